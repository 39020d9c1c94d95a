//! A model's lineage (datasets → runs → versions → deployments, as the API's `lineage` has it)
//! laid out as a graph for the model page.
//!
//! The positions come from `layout-rs`, a layered layout in the manner of Graphviz's `dot`
//! (ranks, edge-crossing reduction, curved edges through the ranks they skip). Its own SVG
//! backend is not used: it writes a `<style>` element and inline classes of its own, which the
//! portal's CSP blocks. Instead a small [`RenderBackend`] records where the layout put each box
//! and each edge's curve, and `templates/model.html` draws the SVG from that, escaped like the
//! rest of the page. Box sizes are chosen here (the layout only places them), wide enough for
//! the label at the stylesheet's font size.

use crate::api::inventory_views::LineageView;
use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;
use std::collections::BTreeMap;

/// Labels longer than this are cut (with "…") in the drawing; the node's `<title>` and the
/// table beside the graph carry them whole.
const MAX_LABEL: usize = 36;
/// An estimate of one character's width at the graph's 13px font, for sizing boxes.
const CHAR_WIDTH: f64 = 7.4;
const BOX_PADDING: f64 = 24.0;
const BOX_HEIGHT: f64 = 44.0;
/// Space around the drawing.
const MARGIN: f64 = 8.0;

/// The lineage, laid out: what the template draws.
#[derive(Debug)]
pub(super) struct LineageGraph {
    /// The `viewBox`: left, top, width, height.
    pub view_box: String,
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<NodeBox>,
    pub edges: Vec<EdgePath>,
}

/// A node, placed.
#[derive(Debug)]
pub(super) struct NodeBox {
    /// `kind:key`, as the API's lineage names it (edges name nodes by it).
    pub key: String,
    /// dataset, run, version or deployment
    pub kind: String,
    /// What the box says (cut at [`MAX_LABEL`]).
    pub text: String,
    /// The whole label.
    pub label: String,
    /// Where the page has more on it (an anchor on the model page), if anywhere.
    pub href: Option<String>,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// The centre, where the label lines are anchored.
    pub cx: f64,
    pub kind_y: f64,
    pub label_y: f64,
}

/// An edge, as an SVG path.
#[derive(Debug)]
pub(super) struct EdgePath {
    pub from: String,
    pub to: String,
    /// The path's `d`: a cubic Bézier through the ranks it crosses.
    pub d: String,
}

/// What the layout drew, by the properties each box and edge was given (their index).
#[derive(Default)]
struct Recorder {
    boxes: Vec<(usize, Point, Point)>,
    curves: Vec<(usize, Vec<(Point, Point)>)>,
}

impl RenderBackend for Recorder {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        _look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        if let Some(index) = properties.and_then(|p| p.parse().ok()) {
            self.boxes.push((index, xy, size));
        }
    }

    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}

    fn draw_circle(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}

    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _dashed: bool,
        _head: (bool, bool),
        _look: &StyleAttr,
        properties: Option<String>,
        _text: &str,
    ) {
        if let Some(index) = properties.and_then(|p| p.parse().ok()) {
            self.curves.push((index, path.to_vec()));
        }
    }

    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

/// `label` cut to [`MAX_LABEL`] characters.
fn shortened(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL {
        label.to_owned()
    } else {
        let mut cut: String = label.chars().take(MAX_LABEL - 1).collect();
        cut.push('…');
        cut
    }
}

/// One decimal is plenty for a screen.
fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The lineage laid out left to right (the way data flows), or `None` when there is nothing to
/// draw or the layout failed (the page then shows the table alone). `href` says where a node
/// links to.
pub(super) fn lay_out(
    lineage: &LineageView,
    href: impl Fn(&str) -> Option<String>,
) -> Option<LineageGraph> {
    if lineage.nodes.is_empty() {
        return None;
    }
    let orientation = Orientation::LeftToRight;
    let index: BTreeMap<&str, usize> = (lineage.nodes.iter().enumerate())
        .map(|(i, n)| (n.key.as_str(), i))
        .collect();
    let texts: Vec<String> = lineage.nodes.iter().map(|n| shortened(&n.label)).collect();
    let sizes: Vec<Point> = (lineage.nodes.iter().zip(&texts))
        .map(|(n, text)| {
            let chars = text.chars().count().max(n.kind.chars().count());
            Point::new(chars as f64 * CHAR_WIDTH + BOX_PADDING, BOX_HEIGHT)
        })
        .collect();
    let edges: Vec<(usize, usize)> = (lineage.edges.iter())
        .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
        .collect();
    // The layout is someone else's code: should it panic on a shape it does not expect, the
    // page still answers, with the table.
    let recorded = std::panic::catch_unwind(|| {
        let mut graph = VisualGraph::new(orientation);
        let handles: Vec<_> = (sizes.iter().enumerate())
            .map(|(i, size)| {
                graph.add_node(Element::create_with_properties(
                    ShapeKind::new_box(""),
                    StyleAttr::simple(),
                    orientation,
                    *size,
                    i.to_string(),
                ))
            })
            .collect();
        for (i, (from, to)) in edges.iter().enumerate() {
            graph.add_edge(
                Arrow::simple_with_properties("", i.to_string()),
                handles[*from],
                handles[*to],
            );
        }
        let mut recorder = Recorder::default();
        graph.do_it(false, false, false, &mut recorder);
        recorder
    })
    .ok()?;
    let mut nodes = Vec::new();
    for (i, at, size) in recorded.boxes {
        let node = lineage.nodes.get(i)?;
        nodes.push(NodeBox {
            key: node.key.clone(),
            kind: node.kind.clone(),
            text: texts[i].clone(),
            label: node.label.clone(),
            href: href(&node.key),
            x: round(at.x),
            y: round(at.y),
            width: round(size.x),
            height: round(size.y),
            cx: round(at.x + size.x / 2.0),
            kind_y: round(at.y + 15.0),
            label_y: round(at.y + 33.0),
        });
    }
    if nodes.len() != lineage.nodes.len() {
        return None;
    }
    nodes.sort_by_key(|n| index.get(n.key.as_str()).copied());
    let mut paths = Vec::new();
    let (mut left, mut top) = (f64::MAX, f64::MAX);
    let (mut right, mut bottom) = (f64::MIN, f64::MIN);
    let mut include = |p: Point| {
        left = left.min(p.x);
        right = right.max(p.x);
        top = top.min(p.y);
        bottom = bottom.max(p.y);
    };
    for n in &nodes {
        include(Point::new(n.x, n.y));
        include(Point::new(n.x + n.width, n.y + n.height));
    }
    for (i, curve) in recorded.curves {
        let (from, to) = *edges.get(i)?;
        let [(start, first), rest @ ..] = curve.as_slice() else {
            return None;
        };
        let [(second, end), through @ ..] = rest else {
            return None;
        };
        let mut d = format!(
            "M {} {} C {} {}, {} {}, {} {}",
            round(start.x),
            round(start.y),
            round(first.x),
            round(first.y),
            round(second.x),
            round(second.y),
            round(end.x),
            round(end.y)
        );
        for (control, point) in through {
            d.push_str(&format!(
                " S {} {}, {} {}",
                round(control.x),
                round(control.y),
                round(point.x),
                round(point.y)
            ));
        }
        for (a, b) in &curve {
            include(*a);
            include(*b);
        }
        paths.push(EdgePath {
            from: lineage.nodes[from].key.clone(),
            to: lineage.nodes[to].key.clone(),
            d,
        });
    }
    if [left, top, right, bottom].iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (width, height) = (
        round(right - left + 2.0 * MARGIN),
        round(bottom - top + 2.0 * MARGIN),
    );
    Some(LineageGraph {
        view_box: format!(
            "{} {} {width} {height}",
            round(left - MARGIN),
            round(top - MARGIN)
        ),
        width,
        height,
        nodes,
        edges: paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::inventory_views::{LineageEdgeView, LineageNodeView};

    fn node(kind: &str, key: &str, label: &str) -> LineageNodeView {
        LineageNodeView {
            kind: kind.to_owned(),
            key: format!("{kind}:{key}"),
            label: label.to_owned(),
        }
    }

    fn edge(from: &str, to: &str) -> LineageEdgeView {
        LineageEdgeView {
            from: from.to_owned(),
            to: to.to_owned(),
        }
    }

    #[test]
    fn every_node_and_edge_is_placed_in_data_flow_order() {
        let lineage = LineageView {
            nodes: vec![
                node("version", "fraud/1", "fraud v1"),
                node("run", "r1", "nightly"),
                node("dataset", "tx", "transactions"),
                node("version", "fraud/2", "fraud v2"),
                node("deployment", "k/kserve/prod/fraud", "prod/fraud"),
            ],
            edges: vec![
                edge("run:r1", "version:fraud/1"),
                edge("dataset:tx", "run:r1"),
                edge("version:fraud/1", "deployment:k/kserve/prod/fraud"),
            ],
        };
        let graph = lay_out(&lineage, |key| {
            key.starts_with("version:").then(|| "#v".to_owned())
        })
        .expect("laid out");
        assert_eq!(graph.nodes.len(), 5);
        assert_eq!(graph.edges.len(), 3);
        let x = |key: &str| {
            graph
                .nodes
                .iter()
                .find(|n| n.key == key)
                .map(|n| n.x)
                .expect("node")
        };
        // Left to right: data, then the run, then the version, then where it runs.
        assert!(x("dataset:tx") < x("run:r1"));
        assert!(x("run:r1") < x("version:fraud/1"));
        assert!(x("version:fraud/1") < x("deployment:k/kserve/prod/fraud"));
        assert_eq!(graph.nodes[0].href.as_deref(), Some("#v"));
        assert_eq!(graph.nodes[1].href, None);
        for n in &graph.nodes {
            assert!(
                n.width >= n.text.chars().count() as f64 * CHAR_WIDTH,
                "{n:?}"
            );
        }
        for e in &graph.edges {
            assert!(e.d.starts_with("M ") && e.d.contains(" C "), "{e:?}");
        }
        assert!(graph.width > 0.0 && graph.height > 0.0);
    }

    #[test]
    fn nothing_to_draw_is_no_graph_and_one_node_is_a_graph() {
        let empty = LineageView {
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        assert!(lay_out(&empty, |_| None).is_none());
        let one = LineageView {
            nodes: vec![node("version", "m/1", "m v1")],
            edges: Vec::new(),
        };
        let graph = lay_out(&one, |_| None).expect("one box");
        assert_eq!(graph.nodes.len(), 1);
        assert!(graph.edges.is_empty());
    }

    #[test]
    fn long_labels_are_cut_in_the_box_and_kept_whole_beside_it() {
        let long = "a".repeat(80);
        let lineage = LineageView {
            nodes: vec![node("dataset", "d", &long)],
            edges: Vec::new(),
        };
        let graph = lay_out(&lineage, |_| None).expect("laid out");
        assert_eq!(graph.nodes[0].text.chars().count(), MAX_LABEL);
        assert!(graph.nodes[0].text.ends_with('…'));
        assert_eq!(graph.nodes[0].label, long);
    }
}
