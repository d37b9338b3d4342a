//! A layered (Sugiyama-style) layout of a [`Graph`], in pure Rust, so drawing a flow needs no
//! Graphviz.
//!
//! The classic four steps, each kept simple because flows are small (tens of nodes):
//! 1. **Cycles**: a depth-first search from the start node turns loops (`back`, "press star to
//!    repeat", re-prompting menus) into upward edges, leaving a DAG.
//! 2. **Layers**: each node goes one layer below the lowest of its predecessors (longest path),
//!    so a call reads top to bottom; edges that span several layers get invisible waypoints.
//! 3. **Order**: within each layer, nodes are sorted by the mean position of their neighbours
//!    (barycentre), sweeping down and up a few times, which removes most crossings.
//! 4. **Coordinates**: a layer wider than about eight boxes is folded onto several rows; each
//!    node is pulled towards its neighbours' centre, then pushed apart so boxes of one row
//!    keep a gap; rows are separate bands, so no two boxes overlap.
//!
//! Edges are polylines through their waypoints; upward (loop) edges leave and enter boxes on
//! their right side so they never hide a downward edge.

use super::Graph;

/// Width of a flow node's box.
pub const NODE_WIDTH: f64 = 210.0;
/// Height of a flow node's box.
pub const NODE_HEIGHT: f64 = 78.0;
/// Width of a built-in (`hangup`, `back`) box.
pub const BUILTIN_WIDTH: f64 = 120.0;
/// Height of a built-in box.
pub const BUILTIN_HEIGHT: f64 = 40.0;
/// Width of a waypoint of a long edge.
const WAYPOINT_WIDTH: f64 = 20.0;
/// Horizontal gap between boxes of a layer.
const GAP_X: f64 = 36.0;
/// Vertical gap between layers (room for edge labels).
const GAP_Y: f64 = 64.0;
/// Margin around the picture.
const MARGIN: f64 = 24.0;
/// Widest row before a layer is folded onto the next row (about eight boxes).
const MAX_ROW_WIDTH: f64 = 2000.0;
/// Barycentre sweeps (each one down and one up).
const SWEEPS: usize = 8;
/// Rounds of pulling nodes towards their neighbours.
const PULLS: usize = 12;

/// A point in picture coordinates (y grows downwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Horizontal, from the left.
    pub x: f64,
    /// Vertical, from the top.
    pub y: f64,
}

/// A box's place: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Rect {
    /// Whether two boxes share any area.
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }

    fn centre_x(&self) -> f64 {
        self.x + self.w / 2.0
    }
}

/// Where everything goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One box per [`Graph::nodes`] entry.
    pub boxes: Vec<Rect>,
    /// One polyline per [`Graph::edges`] entry (empty for a node's loop onto itself, which
    /// the renderer draws beside its box).
    pub edges: Vec<Vec<Point>>,
    /// Whether each edge goes upwards (a loop back to an earlier node).
    pub upward: Vec<bool>,
    /// The picture's width.
    pub width: f64,
    /// The picture's height.
    pub height: f64,
}

/// A vertex of the layered graph: a node, or a waypoint of a long edge.
#[derive(Debug, Clone, Copy)]
struct Vertex {
    width: f64,
    layer: usize,
}

/// Lays out `graph`; the start node is the first node flagged `start` (or node 0).
pub fn layout(graph: &Graph) -> Layout {
    let n = graph.nodes.len();
    let start = graph.nodes.iter().position(|g| g.start).unwrap_or(0);
    let links: Vec<(usize, usize)> = graph.edges.iter().map(|e| (e.from, e.to)).collect();
    let upward = back_edges(n, start, &links);
    let layers = layer_of(n, &links, &upward);

    let mut vertices: Vec<Vertex> = graph
        .nodes
        .iter()
        .zip(&layers)
        .map(|(node, &layer)| Vertex {
            width: if node.builtin {
                BUILTIN_WIDTH
            } else {
                NODE_WIDTH
            },
            layer,
        })
        .collect();
    // Each edge as a chain of vertices from its upper end to its lower end.
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(links.len());
    for (i, &(from, to)) in links.iter().enumerate() {
        if from == to {
            chains.push(Vec::new());
            continue;
        }
        let (top, bottom) = if upward[i] { (to, from) } else { (from, to) };
        let mut chain = vec![top];
        for layer in layers[top] + 1..layers[bottom] {
            vertices.push(Vertex {
                width: WAYPOINT_WIDTH,
                layer,
            });
            chain.push(vertices.len() - 1);
        }
        chain.push(bottom);
        chains.push(chain);
    }

    let depth = vertices.iter().map(|v| v.layer).max().unwrap_or(0) + 1;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (v, vertex) in vertices.iter().enumerate() {
        rows[vertex.layer].push(v);
    }
    let (ups, downs) = neighbours(vertices.len(), &chains);
    order(&mut rows, &ups, &downs);
    // A layer too wide to read at a glance is folded into several rows, in its order.
    let rows = fold(rows, &vertices);
    let mut row_of = vec![0usize; vertices.len()];
    for (r, row) in rows.iter().enumerate() {
        for &v in row {
            row_of[v] = r;
        }
    }
    let xs = coordinates(&rows, &vertices, &ups, &downs);

    let row_height: Vec<f64> = rows
        .iter()
        .map(|row| {
            row.iter()
                .filter(|&&v| v < n)
                .map(|&v| height_of(graph, v))
                .fold(BUILTIN_HEIGHT, f64::max)
        })
        .collect();
    let mut row_top = Vec::with_capacity(rows.len());
    let mut y = MARGIN;
    for h in &row_height {
        row_top.push(y);
        y += h + GAP_Y;
    }
    let height = y - GAP_Y + MARGIN;
    let centre_y = |v: usize| row_top[row_of[v]] + row_height[row_of[v]] / 2.0;

    let boxes: Vec<Rect> = (0..n)
        .map(|v| {
            let h = height_of(graph, v);
            Rect {
                x: xs[v] - vertices[v].width / 2.0,
                y: centre_y(v) - h / 2.0,
                w: vertices[v].width,
                h,
            }
        })
        .collect();
    let width = boxes
        .iter()
        .map(|b| b.x + b.w)
        .chain(xs.iter().copied())
        .fold(0.0, f64::max)
        + MARGIN
        + 40.0;

    let edges = route(graph, &boxes, &chains, &upward, &xs, &centre_y);
    Layout {
        boxes,
        edges,
        upward,
        width,
        height,
    }
}

fn height_of(graph: &Graph, v: usize) -> f64 {
    if graph.nodes[v].builtin {
        BUILTIN_HEIGHT
    } else {
        NODE_HEIGHT
    }
}

/// Splits each layer wider than [`MAX_ROW_WIDTH`] into consecutive rows of at most that width,
/// keeping its order (so a menu's options stay together).
fn fold(rows: Vec<Vec<usize>>, vertices: &[Vertex]) -> Vec<Vec<usize>> {
    let mut folded = Vec::with_capacity(rows.len());
    for row in rows {
        let mut current: Vec<usize> = Vec::new();
        let mut width = 0.0;
        for v in row {
            let w = vertices[v].width + GAP_X;
            if !current.is_empty() && width + w > MAX_ROW_WIDTH {
                folded.push(std::mem::take(&mut current));
                width = 0.0;
            }
            current.push(v);
            width += w;
        }
        folded.push(current);
    }
    folded
}

/// Which edges close a cycle, found by a depth-first search from `start`, then from every
/// node not yet visited (in order), so unreachable nodes are laid out too.
fn back_edges(n: usize, start: usize, links: &[(usize, usize)]) -> Vec<bool> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, &(from, _)) in links.iter().enumerate() {
        out_edges[from].push(i);
    }
    let mut mark = vec![Mark::New; n];
    let mut back = vec![false; links.len()];
    let roots = std::iter::once(start).chain((0..n).filter(|&v| v != start));
    for root in roots {
        if mark[root] != Mark::New {
            continue;
        }
        // An explicit stack of (vertex, next edge to look at), to keep deep flows off the
        // call stack.
        let mut stack = vec![(root, 0usize)];
        mark[root] = Mark::Open;
        while let Some(&(v, next)) = stack.last() {
            if let Some(&edge) = out_edges[v].get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                let to = links[edge].1;
                match mark[to] {
                    Mark::New => {
                        mark[to] = Mark::Open;
                        stack.push((to, 0));
                    }
                    Mark::Open => back[edge] = true,
                    Mark::Done => {}
                }
            } else {
                mark[v] = Mark::Done;
                stack.pop();
            }
        }
    }
    back
}

/// The layer of each node: one below its lowest predecessor along downward edges.
fn layer_of(n: usize, links: &[(usize, usize)], upward: &[bool]) -> Vec<usize> {
    let down: Vec<(usize, usize)> = links
        .iter()
        .zip(upward)
        .filter(|&(&(from, to), &up)| !up && from != to)
        .map(|(&link, _)| link)
        .collect();
    let mut indegree = vec![0usize; n];
    for &(_, to) in &down {
        indegree[to] += 1;
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).rev().filter(|&v| indegree[v] == 0).collect();
    while let Some(v) = ready.pop() {
        for &(from, to) in &down {
            if from == v {
                layer[to] = layer[to].max(layer[v] + 1);
                indegree[to] -= 1;
                if indegree[to] == 0 {
                    ready.push(to);
                }
            }
        }
    }
    layer
}

/// Each vertex's neighbours in the layer above and the layer below.
fn neighbours(count: usize, chains: &[Vec<usize>]) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut ups = vec![Vec::new(); count];
    let mut downs = vec![Vec::new(); count];
    for chain in chains {
        for pair in chain.windows(2) {
            downs[pair[0]].push(pair[1]);
            ups[pair[1]].push(pair[0]);
        }
    }
    (ups, downs)
}

/// Sorts each layer by the barycentre of its neighbours, sweeping down then up.
fn order(rows: &mut [Vec<usize>], ups: &[Vec<usize>], downs: &[Vec<usize>]) {
    let count = ups.len();
    let mut position = vec![0.0f64; count];
    let index = |rows: &[Vec<usize>], position: &mut Vec<f64>| {
        for row in rows {
            for (i, &v) in row.iter().enumerate() {
                position[v] = i as f64;
            }
        }
    };
    index(rows, &mut position);
    for _ in 0..SWEEPS {
        for layer in 1..rows.len() {
            sort_row(&mut rows[layer], ups, &position);
            index(rows, &mut position);
        }
        for layer in (0..rows.len().saturating_sub(1)).rev() {
            sort_row(&mut rows[layer], downs, &position);
            index(rows, &mut position);
        }
    }
}

/// Sorts one layer by the mean position of each vertex's neighbours in `side`; a vertex
/// without neighbours there keeps its place.
fn sort_row(row: &mut [usize], side: &[Vec<usize>], position: &[f64]) {
    let mut keyed: Vec<(f64, usize)> = row
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let near = &side[v];
            let key = if near.is_empty() {
                i as f64
            } else {
                near.iter().map(|&u| position[u]).sum::<f64>() / near.len() as f64
            };
            (key, v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (slot, (_, v)) in row.iter_mut().zip(keyed) {
        *slot = v;
    }
}

/// Horizontal centres: packed rows, then pulled towards neighbours, always keeping each row's
/// order and its gaps.
fn coordinates(
    rows: &[Vec<usize>],
    vertices: &[Vertex],
    ups: &[Vec<usize>],
    downs: &[Vec<usize>],
) -> Vec<f64> {
    let mut x = vec![0.0f64; vertices.len()];
    for row in rows {
        let mut left = MARGIN;
        for &v in row {
            x[v] = left + vertices[v].width / 2.0;
            left += vertices[v].width + GAP_X;
        }
    }
    for round in 0..PULLS {
        let down = round % 2 == 0;
        let layers: Vec<usize> = if down {
            (0..rows.len()).collect()
        } else {
            (0..rows.len()).rev().collect()
        };
        for layer in layers {
            let side = if down { ups } else { downs };
            let wanted: Vec<f64> = rows[layer]
                .iter()
                .map(|&v| {
                    let near = &side[v];
                    if near.is_empty() {
                        x[v]
                    } else {
                        near.iter().map(|&u| x[u]).sum::<f64>() / near.len() as f64
                    }
                })
                .collect();
            place_row(&rows[layer], vertices, &wanted, &mut x);
        }
    }
    // Shift everything so the leftmost box starts at the margin.
    let left = (0..vertices.len())
        .map(|v| x[v] - vertices[v].width / 2.0)
        .fold(f64::INFINITY, f64::min);
    if left.is_finite() {
        for value in &mut x {
            *value += MARGIN - left;
        }
    }
    x
}

/// Puts a row's vertices as close to `wanted` as their order and gaps allow (least squares):
/// vertices that would collide are merged into blocks kept at their members' mean wish, left
/// to right, so no box can overlap its neighbour.
fn place_row(row: &[usize], vertices: &[Vertex], wanted: &[f64], x: &mut [f64]) {
    /// Consecutive vertices `first..=last` of the row, placed together; `sum` is the sum of
    /// their wishes minus their offsets from the first, so `sum / n` is where the first goes.
    struct Block {
        first: usize,
        last: usize,
        sum: f64,
        n: f64,
    }
    let gap = |a: usize, b: usize| (vertices[a].width + vertices[b].width) / 2.0 + GAP_X;
    let mut offset = vec![0.0f64; row.len()];
    let mut blocks: Vec<Block> = Vec::new();
    for (i, &wish) in wanted.iter().enumerate().take(row.len()) {
        let mut block = Block {
            first: i,
            last: i,
            sum: wish,
            n: 1.0,
        };
        while let Some(previous) = blocks.last() {
            let need = gap(row[previous.last], row[block.first]);
            let previous_end = previous.sum / previous.n + offset[previous.last];
            if previous_end + need <= block.sum / block.n {
                break;
            }
            let shift = offset[previous.last] + need;
            for moved in &mut offset[block.first..=block.last] {
                *moved += shift;
            }
            block = Block {
                first: previous.first,
                last: block.last,
                sum: previous.sum + block.sum - shift * block.n,
                n: previous.n + block.n,
            };
            blocks.pop();
        }
        blocks.push(block);
    }
    for block in &blocks {
        let start = block.sum / block.n;
        for k in block.first..=block.last {
            x[row[k]] = start + offset[k];
        }
    }
}

/// The polyline of each edge. Downward edges leave the bottom of their source at a port
/// spread by the targets' order and enter the top of their target; upward edges leave and
/// enter on the right side.
fn route(
    graph: &Graph,
    boxes: &[Rect],
    chains: &[Vec<usize>],
    upward: &[bool],
    xs: &[f64],
    centre_y: &dyn Fn(usize) -> f64,
) -> Vec<Vec<Point>> {
    // Downward edges of each source, sorted by where their first hop goes.
    let mut ports: Vec<Vec<usize>> = vec![Vec::new(); boxes.len()];
    for (i, chain) in chains.iter().enumerate() {
        if !chain.is_empty() && !upward[i] {
            ports[graph.edges[i].from].push(i);
        }
    }
    for list in &mut ports {
        list.sort_by(|&a, &b| xs[chains[a][1]].total_cmp(&xs[chains[b][1]]));
    }
    let mut port_x = vec![0.0f64; chains.len()];
    for (node, list) in ports.iter().enumerate() {
        let b = boxes[node];
        for (k, &edge) in list.iter().enumerate() {
            port_x[edge] = b.x + b.w * (k as f64 + 1.0) / (list.len() as f64 + 1.0);
        }
    }
    chains
        .iter()
        .enumerate()
        .map(|(i, chain)| {
            if chain.is_empty() {
                return Vec::new();
            }
            let inner = chain[1..chain.len() - 1].iter().map(|&v| Point {
                x: xs[v],
                y: centre_y(v),
            });
            if upward[i] {
                // chain runs from the target (top) to the source (bottom).
                let (top, bottom) = (boxes[chain[0]], boxes[chain[chain.len() - 1]]);
                let mut points = vec![Point {
                    x: bottom.x + bottom.w,
                    y: bottom.y + bottom.h / 2.0,
                }];
                let mut middle: Vec<Point> = inner.collect();
                middle.reverse();
                if middle.is_empty() {
                    middle.push(Point {
                        x: top.x.max(bottom.x) + top.w.max(bottom.w) + 28.0,
                        y: (top.y + top.h + bottom.y) / 2.0,
                    });
                }
                points.extend(middle);
                points.push(Point {
                    x: top.x + top.w,
                    y: top.y + top.h / 2.0,
                });
                points
            } else {
                let (from, to) = (boxes[chain[0]], boxes[chain[chain.len() - 1]]);
                let mut points = vec![Point {
                    x: port_x[i],
                    y: from.y + from.h,
                }];
                points.extend(inner);
                points.push(Point {
                    x: to.centre_x(),
                    y: to.y,
                });
                points
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_keeps_its_order_and_gaps_and_stays_near_its_wishes() {
        let vertices = vec![
            Vertex {
                width: 100.0,
                layer: 0
            };
            3
        ];
        let row = [0, 1, 2];
        let mut x = vec![0.0; 3];
        // All three want the same place: they spread around it, in order.
        place_row(&row, &vertices, &[500.0, 500.0, 500.0], &mut x);
        let step = 100.0 + GAP_X;
        assert_eq!(x, vec![500.0 - step, 500.0, 500.0 + step]);
        // Far apart wishes are met exactly.
        place_row(&row, &vertices, &[0.0, 1000.0, 2000.0], &mut x);
        assert_eq!(x, vec![0.0, 1000.0, 2000.0]);
    }

    #[test]
    fn loops_are_found_from_the_start_node() {
        // 0 -> 1 -> 2 -> 0 (a loop back), 1 -> 1 (a retry), 3 unreachable -> 0.
        let links = [(0, 1), (1, 2), (2, 0), (1, 1), (3, 0)];
        assert_eq!(
            back_edges(4, 0, &links),
            vec![false, false, true, true, false]
        );
        let up = back_edges(4, 0, &links);
        assert_eq!(layer_of(4, &links, &up), vec![1, 2, 3, 0]);
    }
}
