//! Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4): building them from stored
//! perfect-subtree roots, and verifying them with nothing but hashes.
//!
//! Building is written against a `node(level, index)` lookup. A caller that must fetch nodes
//! from a database first asks [`inclusion_nodes`] / [`consistency_nodes`] which nodes a proof
//! needs, fetches them in one query, then builds the proof from the fetched map.

use crate::hash::{Hash, node_hash};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {first} is larger than {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the stored tree lacks node ({level}, {index})")]
    MissingNode { level: u32, index: u64 },
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of the leaves `[start, start + size)`, where `start` is a multiple of the largest
/// power of two not above `size` (true of every range the RFC's recursion produces).
fn range_root(
    node: &mut dyn FnMut(u32, u64) -> Result<Hash, ProofError>,
    start: u64,
    size: u64,
) -> Result<Hash, ProofError> {
    // Perfect subtrees of decreasing size, folded from the right.
    let mut parts = Vec::new();
    let mut offset = start;
    for level in (0..64u32).rev() {
        if size & (1u64 << level) != 0 {
            parts.push(node(level, offset >> level)?);
            offset += 1u64 << level;
        }
    }
    let mut iter = parts.into_iter().rev();
    let last = iter.next().ok_or(ProofError::WrongLength)?;
    Ok(iter.fold(last, |acc, left| node_hash(&left, &acc)))
}

/// RFC 9162 PATH(m, D[start..start+size]).
fn path(
    node: &mut dyn FnMut(u32, u64) -> Result<Hash, ProofError>,
    m: u64,
    start: u64,
    size: u64,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    if size <= 1 {
        return Ok(());
    }
    let k = largest_power_of_two_below(size);
    if m < k {
        path(node, m, start, k, out)?;
        out.push(range_root(node, start + k, size - k)?);
    } else {
        path(node, m - k, start + k, size - k, out)?;
        out.push(range_root(node, start, k)?);
    }
    Ok(())
}

/// RFC 9162 SUBPROOF(m, D[start..start+size], b).
fn subproof(
    node: &mut dyn FnMut(u32, u64) -> Result<Hash, ProofError>,
    m: u64,
    start: u64,
    size: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    if m == size {
        if !complete {
            out.push(range_root(node, start, size)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(size);
    if m <= k {
        subproof(node, m, start, k, complete, out)?;
        out.push(range_root(node, start + k, size - k)?);
    } else {
        subproof(node, m - k, start + k, size - k, false, out)?;
        out.push(range_root(node, start, k)?);
    }
    Ok(())
}

/// The inclusion proof of leaf `index` in a tree of `size`.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    mut node: impl FnMut(u32, u64) -> Result<Hash, ProofError>,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    path(&mut node, index, 0, size, &mut out)?;
    Ok(out)
}

/// The consistency proof between trees of `first` and `second` leaves.
pub fn consistency_proof(
    first: u64,
    second: u64,
    mut node: impl FnMut(u32, u64) -> Result<Hash, ProofError>,
) -> Result<Vec<Hash>, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let mut out = Vec::new();
    if first > 0 && first < second {
        subproof(&mut node, first, 0, second, true, &mut out)?;
    }
    Ok(out)
}

/// Which stored nodes a proof reads: run the builder with a recording lookup.
fn nodes_read(
    build: impl FnOnce(&mut dyn FnMut(u32, u64) -> Result<Hash, ProofError>),
) -> BTreeSet<(u32, u64)> {
    let mut read = BTreeSet::new();
    let mut record = |level: u32, index: u64| {
        read.insert((level, index));
        Ok(Hash([0; 32]))
    };
    build(&mut record);
    read
}

pub fn inclusion_nodes(index: u64, size: u64) -> BTreeSet<(u32, u64)> {
    nodes_read(|node| {
        let _ = inclusion_proof(index, size, node);
    })
}

pub fn consistency_nodes(first: u64, second: u64) -> BTreeSet<(u32, u64)> {
    nodes_read(|node| {
        let _ = consistency_proof(first, second, node);
    })
}

/// RFC 9162 §2.1.3.2: recomputes the root from a leaf hash and its inclusion proof.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion_proof(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// RFC 9162 §2.1.4.2: checks that the tree of `first` leaves with root `first_root` is a prefix
/// of the tree of `second` leaves with root `second_root`.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == second {
        return if !proof.is_empty() {
            Err(ProofError::WrongLength)
        } else if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if first == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (path[0], path[0]);
    for c in &path[1..] {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if f_r == *first_root && s_r == *second_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::Frontier;
    use crate::hash::tests::{h, vector_leaves, vector_roots};
    use std::collections::HashMap;

    /// Every perfect subtree root of the tree of `leaves`.
    fn stored(leaves: &[Hash]) -> HashMap<(u32, u64), Hash> {
        let mut frontier = Frontier::default();
        leaves
            .iter()
            .flat_map(|l| frontier.append(*l))
            .map(|n| ((n.level, n.index), n.hash))
            .collect()
    }

    fn lookup(
        nodes: &HashMap<(u32, u64), Hash>,
    ) -> impl FnMut(u32, u64) -> Result<Hash, ProofError> + '_ {
        |level, index| {
            nodes
                .get(&(level, index))
                .copied()
                .ok_or(ProofError::MissingNode { level, index })
        }
    }

    struct Vector {
        kind: String,
        a: u64,
        b: u64,
        proof: Vec<Hash>,
    }

    fn vectors() -> Vec<Vector> {
        include_str!("../testdata/proofs.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let mut words = line.split_whitespace();
                let kind = words.next().expect("kind").to_owned();
                let a = words.next().and_then(|w| w.parse().ok()).expect("a");
                let b = words.next().and_then(|w| w.parse().ok()).expect("b");
                Vector {
                    kind,
                    a,
                    b,
                    proof: words.map(h).collect(),
                }
            })
            .collect()
    }

    #[test]
    fn proofs_match_and_verify_the_public_vectors() {
        let leaves = vector_leaves();
        let roots = vector_roots();
        let nodes = stored(&leaves);
        for v in vectors() {
            match v.kind.as_str() {
                "inclusion" => {
                    let built = inclusion_proof(v.a, v.b, lookup(&nodes)).expect("built");
                    assert_eq!(built, v.proof, "inclusion {} {}", v.a, v.b);
                    let leaf = leaves[v.a as usize];
                    verify_inclusion(v.a, v.b, &leaf, &v.proof, &roots[v.b as usize])
                        .expect("verifies");
                    // Tampering in any way fails.
                    assert!(
                        verify_inclusion(
                            v.a,
                            v.b,
                            &leaves[(v.a as usize + 1) % 8],
                            &v.proof,
                            &roots[v.b as usize]
                        )
                        .is_err()
                            || v.b == 1
                    );
                    assert!(
                        verify_inclusion(v.a, v.b * 2, &leaf, &v.proof, &roots[v.b as usize])
                            .is_err()
                    );
                    for i in 0..v.proof.len() {
                        let mut bad = v.proof.clone();
                        bad[i].0[0] ^= 8;
                        assert!(
                            verify_inclusion(v.a, v.b, &leaf, &bad, &roots[v.b as usize]).is_err()
                        );
                    }
                    let mut longer = v.proof.clone();
                    longer.push(roots[v.b as usize]);
                    assert!(
                        verify_inclusion(v.a, v.b, &leaf, &longer, &roots[v.b as usize]).is_err()
                    );
                }
                "consistency" => {
                    let built = consistency_proof(v.a, v.b, lookup(&nodes)).expect("built");
                    assert_eq!(built, v.proof, "consistency {} {}", v.a, v.b);
                    let (r1, r2) = (roots[v.a as usize], roots[v.b as usize]);
                    verify_consistency(v.a, v.b, &r1, &r2, &v.proof).expect("verifies");
                    if !v.proof.is_empty() {
                        assert!(verify_consistency(v.a, v.b, &r2, &r1, &v.proof).is_err());
                        assert!(
                            verify_consistency(v.a, v.b, &r1, &r2, &v.proof[..v.proof.len() - 1])
                                .is_err()
                        );
                        for i in 0..v.proof.len() {
                            let mut bad = v.proof.clone();
                            bad[i].0[0] ^= 16;
                            assert!(verify_consistency(v.a, v.b, &r1, &r2, &bad).is_err());
                        }
                    }
                }
                other => panic!("unknown vector kind {other}"),
            }
        }
    }

    #[test]
    fn every_proof_of_a_larger_tree_verifies() {
        let leaves: Vec<Hash> = (0..70u32)
            .map(|i| crate::hash::leaf_hash(&i.to_be_bytes()))
            .collect();
        let nodes = stored(&leaves);
        let roots: Vec<Hash> = (0..=leaves.len())
            .map(|n| crate::hash::root_of(&leaves[..n]))
            .collect();
        for size in 1..=leaves.len() as u64 {
            for index in 0..size {
                let proof = inclusion_proof(index, size, lookup(&nodes)).expect("built");
                verify_inclusion(
                    index,
                    size,
                    &leaves[index as usize],
                    &proof,
                    &roots[size as usize],
                )
                .expect("verifies");
                assert!(inclusion_nodes(index, size).len() <= 2 * 64);
            }
            for first in 0..=size {
                let proof = consistency_proof(first, size, lookup(&nodes)).expect("built");
                verify_consistency(
                    first,
                    size,
                    &roots[first as usize],
                    &roots[size as usize],
                    &proof,
                )
                .expect("consistent");
            }
        }
        // The nodes a proof reads are exactly the ones its builder asks for.
        let needed = inclusion_nodes(5, 70);
        let subset: HashMap<_, _> = nodes
            .iter()
            .filter(|(k, _)| needed.contains(k))
            .map(|(k, v)| (*k, *v))
            .collect();
        assert!(inclusion_proof(5, 70, lookup(&subset)).is_ok());
        let needed = consistency_nodes(13, 70);
        let subset: HashMap<_, _> = nodes
            .iter()
            .filter(|(k, _)| needed.contains(k))
            .map(|(k, v)| (*k, *v))
            .collect();
        assert!(consistency_proof(13, 70, lookup(&subset)).is_ok());
    }
}
