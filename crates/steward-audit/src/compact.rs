//! Appending to the tree without re-reading it: the frontier (compact range) of perfect subtrees.
//!
//! A tree of size n is the concatenation of perfect subtrees, one for each set bit of n, largest
//! first. Appending a leaf merges equal-sized subtrees on the right, creating on average two new
//! stored nodes per leaf. The store keeps every perfect subtree's root (`level`, `index`), so any
//! proof can be assembled from O(log n) stored nodes.

use crate::hash::{Hash, empty_root, node_hash};

/// A perfect subtree root created by an append: `level` 0 is the leaf itself; `index` counts
/// subtrees of that level from the left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub level: u32,
    pub index: u64,
    pub hash: Hash,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    roots: Vec<Hash>,
}

impl Frontier {
    /// Rebuilds the frontier of a tree of `size` from its perfect subtree roots, largest first
    /// (the nodes at [`Frontier::coordinates`]).
    pub fn from_roots(size: u64, roots: Vec<Hash>) -> Option<Frontier> {
        (roots.len() == size.count_ones() as usize).then_some(Frontier { size, roots })
    }

    /// The (level, index) of each perfect subtree root of a tree of `size`, largest first.
    pub fn coordinates(size: u64) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                out.push((level, start >> level));
                start += 1u64 << level;
            }
        }
        out
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest first.
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Appends a leaf hash; returns every perfect subtree root this completes, the leaf first.
    pub fn append(&mut self, leaf: Hash) -> Vec<Node> {
        let mut created = vec![Node {
            level: 0,
            index: self.size,
            hash: leaf,
        }];
        let mut hash = leaf;
        let mut level = 0u32;
        let mut index = self.size;
        while index & 1 == 1 {
            let Some(left) = self.roots.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            created.push(Node { level, index, hash });
        }
        self.roots.push(hash);
        self.size += 1;
        created
    }

    /// Appends a leaf hash without reporting the nodes it completes (verifiers need only the root).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut index = self.size;
        while index & 1 == 1 {
            let Some(left) = self.roots.pop() else { break };
            hash = node_hash(&left, &hash);
            index >>= 1;
        }
        self.roots.push(hash);
        self.size += 1;
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        let mut iter = self.roots.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::tests::{vector_leaves, vector_roots};

    #[test]
    fn appending_the_vectors_gives_their_roots_and_stored_nodes() {
        let leaves = vector_leaves();
        let roots = vector_roots();
        let mut frontier = Frontier::default();
        let mut nodes = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            nodes.extend(frontier.append(*leaf));
            assert_eq!(frontier.root(), roots[i + 1], "size {}", i + 1);
            let rebuilt: Vec<Hash> = Frontier::coordinates(frontier.size())
                .into_iter()
                .map(|(level, index)| {
                    nodes
                        .iter()
                        .find(|n| n.level == level && n.index == index)
                        .map(|n| n.hash)
                        .expect("stored")
                })
                .collect();
            assert_eq!(
                Frontier::from_roots(frontier.size(), rebuilt).as_ref(),
                Some(&frontier)
            );
        }
        // 8 leaves make 15 perfect subtrees; the last is the root of the whole tree.
        assert_eq!(nodes.len(), 15);
        assert_eq!(
            nodes.last().map(|n| (n.level, n.index, n.hash)),
            Some((3, 0, roots[8]))
        );
        assert_eq!(Frontier::coordinates(6), [(2, 0), (1, 2)]);
    }
}
