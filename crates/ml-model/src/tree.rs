//! One CART classification tree for 0/1 labels, grown on pre-binned inputs: the members of
//! [`crate::forest::Forest`].
//!
//! Training never sorts rows. [`Binned`] maps every model input column once per forest to at
//! most 256 ordered bins (one per distinct training value when there are few, else groups of
//! about equal row counts), and a node's candidate splits are read off a histogram of its rows
//! over those bins. A split between bins is stored as a real threshold, midway between the
//! largest training value left of it and the smallest right of it (scikit-learn's choice for
//! an exact splitter), so prediction compares raw values and never bins; the threshold sends
//! every training row to the side its bin went. A node builds the histogram of its smaller
//! child only; the larger child's is the parent's minus that one.
//!
//! The tree follows scikit-learn's `DecisionTreeClassifier` as a forest member uses it: gini
//! impurity; `max_depth` counts splits from the root; `min_samples_leaf` counts distinct
//! training rows, however often the bootstrap drew them; each node examines `max_features`
//! inputs in random order, where inputs constant in the node do not count (so a split is found
//! whenever one exists); a bootstrap is a weight per row (how often it was drawn), and a leaf
//! keeps the weighted numbers of class-0 and class-1 rows it received, whose class-1 share is
//! the tree's probability.
//!
//! Nodes live in flat arrays indexed by node number; node 0 is the root, children always
//! come after their parent, and a leaf has `left == right == 0` (the root is no node's child).
//! A row goes left when `x[feature] <= threshold`; a NaN fails every comparison and goes
//! right. (NaN does not reach a forest in the pipeline: the feature pipeline imputes.)

use rand::Rng;

use crate::preprocess::Matrix;

/// At most this many bins per input column: bin numbers fit a `u8`.
pub(crate) const MAX_BINS: usize = 256;

/// Pending nodes keep their histogram while the stack of nodes to grow is shorter than this;
/// deeper ones rebuild it from their rows, which bounds memory for unlimited depth.
const KEPT_HISTOGRAMS: usize = 64;

/// The training inputs of a forest, binned once and shared by all its trees.
#[derive(Debug)]
pub(crate) struct Binned {
    n_rows: usize,
    /// Column-major like [`Matrix`]: the bin of row `i` in column `j` is `bins[j * n_rows + i]`.
    bins: Vec<u8>,
    /// Column `j` owns histogram slots `offset[j]..offset[j + 1]`, one per bin.
    offset: Vec<usize>,
    /// Per histogram slot: the smallest and the largest training value in the bin.
    lowest: Vec<f64>,
    highest: Vec<f64>,
}

impl Binned {
    /// Bins every column of `x`, whose values must all be finite.
    pub(crate) fn new(x: &Matrix) -> Self {
        let mut bins = Vec::with_capacity(x.n_rows * x.n_cols);
        let mut offset = vec![0];
        let (mut lowest, mut highest) = (Vec::new(), Vec::new());
        for j in 0..x.n_cols {
            let column = x.column(j);
            let (low, high) = bin_edges(column);
            // The first bin whose largest value is not below v: the bin that holds v.
            bins.extend(
                column
                    .iter()
                    .map(|&v| high.partition_point(|&h| h < v) as u8),
            );
            lowest.extend_from_slice(&low);
            highest.extend_from_slice(&high);
            offset.push(lowest.len());
        }
        Self {
            n_rows: x.n_rows,
            bins,
            offset,
            lowest,
            highest,
        }
    }

    pub(crate) fn n_cols(&self) -> usize {
        self.offset.len() - 1
    }

    fn column(&self, j: usize) -> &[u8] {
        &self.bins[j * self.n_rows..(j + 1) * self.n_rows]
    }

    fn n_slots(&self) -> usize {
        self.lowest.len()
    }
}

/// The smallest and the largest value of each bin of a column, ascending: one bin per
/// distinct value if there are at most [`MAX_BINS`], else runs of distinct values holding
/// about equal numbers of rows (a value is never split across bins).
fn bin_edges(column: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut sorted = column.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &v in &sorted {
        match distinct.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    if distinct.len() <= MAX_BINS {
        let values: Vec<f64> = distinct.iter().map(|&(v, _)| v).collect();
        return (values.clone(), values);
    }
    let (mut low, mut high) = (Vec::with_capacity(MAX_BINS), Vec::with_capacity(MAX_BINS));
    let (mut rows_left, mut bins_left) = (sorted.len(), MAX_BINS);
    let (mut first, mut in_bin) = (None, 0);
    for (k, &(v, count)) in distinct.iter().enumerate() {
        first.get_or_insert(v);
        in_bin += count;
        // A bin closes once it holds its share of the rows still to bin, or when each value
        // still to come can have a bin of its own: a value shared by many rows leaves the
        // rest of the column finely binned.
        let values_left = distinct.len() - k - 1;
        if bins_left > 1 && (in_bin * bins_left >= rows_left || values_left < bins_left) {
            low.extend(first.take());
            high.push(v);
            rows_left -= in_bin;
            bins_left -= 1;
            in_bin = 0;
        }
    }
    if let Some(v) = first {
        low.push(v);
        high.push(distinct[distinct.len() - 1].0);
    }
    (low, high)
}

/// A threshold between training values `a < b`: their midpoint, or `a` where the midpoint
/// rounds to `b`, so that `a <= threshold < b` always holds.
fn threshold_between(a: f64, b: f64) -> f64 {
    let m = a.midpoint(b);
    if m < b {
        m
    } else {
        a
    }
}

/// How a tree is grown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeParams {
    pub max_depth: Option<u16>,
    pub min_samples_leaf: usize,
    /// Inputs examined per split, in `1..=n_cols`.
    pub max_features: usize,
}

/// A fitted tree. All arrays have one entry per node; see the module docs for the layout.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tree {
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    /// Weighted numbers of class-0 and class-1 training rows that reached the node.
    pub count0: Vec<u32>,
    pub count1: Vec<u32>,
    /// Derived from the arrays above for scoring; not stored in the model file.
    scoring: Scoring,
}

/// The scoring layout of a tree: per node its class-1 share `count1 / (count0 + count1)` and
/// its children as `[right, left]`, a leaf being its own child. Then `depth` steps of
/// `node = next[node][x <= threshold]` take any row to its leaf with no branch to mispredict,
/// and a block of rows walks a tree in lockstep, each step independent across rows.
#[derive(Debug, Clone, Default, PartialEq)]
struct Scoring {
    proba: Vec<f64>,
    next: Vec<[u32; 2]>,
    depth: usize,
}

impl Scoring {
    fn of(t: &Tree) -> Self {
        let n = t.feature.len();
        let mut next = Vec::with_capacity(n);
        let mut depth = vec![0; n];
        for i in 0..n {
            if t.left[i] == 0 {
                next.push([i as u32; 2]);
            } else {
                next.push([t.right[i], t.left[i]]);
                // Children come after their parent, so the parent's depth is final.
                depth[t.left[i] as usize] = depth[i] + 1;
                depth[t.right[i] as usize] = depth[i] + 1;
            }
        }
        let proba = t
            .count0
            .iter()
            .zip(&t.count1)
            .map(|(&c0, &c1)| {
                let total = f64::from(c0) + f64::from(c1);
                if total > 0.0 {
                    f64::from(c1) / total
                } else {
                    0.0
                }
            })
            .collect();
        Self {
            proba,
            next,
            depth: depth.into_iter().max().unwrap_or(0),
        }
    }
}

/// Weighted class counts and distinct rows of a node or a histogram bin.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    class: [u32; 2],
    rows: u32,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.class[0] += o.class[0];
        self.class[1] += o.class[1];
        self.rows += o.rows;
    }

    fn minus(self, o: Counts) -> Counts {
        Counts {
            class: [self.class[0] - o.class[0], self.class[1] - o.class[1]],
            rows: self.rows - o.rows,
        }
    }

    /// `sum_k w_k^2 / w`: a split minimises weighted gini impurity exactly when it maximises
    /// this summed over both children (scikit-learn's "proxy impurity improvement").
    fn purity(self) -> f64 {
        let (a, b) = (f64::from(self.class[0]), f64::from(self.class[1]));
        (a * a + b * b) / (a + b)
    }
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    /// Rows in bins `..=bin` of `feature` go left.
    bin: u8,
    threshold: f64,
    left: Counts,
    score: f64,
}

/// A node still to grow: its rows are `rows[start..end]`.
struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: u16,
    counts: Counts,
    histogram: Option<Vec<Counts>>,
}

/// The state of growing one tree.
struct Grower<'a> {
    binned: &'a Binned,
    y: &'a [u8],
    weight: &'a [u32],
    params: TreeParams,
    /// Row numbers with a non-zero weight; each node owns a contiguous range, ascending.
    rows: Vec<u32>,
    scratch: Vec<u32>,
    features: Vec<usize>,
    spare: Vec<Vec<Counts>>,
    tree: Tree,
}

impl Tree {
    /// Grows a tree on the binned inputs, labels `y` (0 or 1) and row weights `weight` (a
    /// bootstrap's draw counts; at least one non-zero).
    pub(crate) fn grow(
        binned: &Binned,
        y: &[u8],
        weight: &[u32],
        params: TreeParams,
        rng: &mut impl Rng,
    ) -> Self {
        let rows: Vec<u32> = (0..binned.n_rows as u32)
            .filter(|&r| weight[r as usize] > 0)
            .collect();
        let mut counts = Counts::default();
        for &r in &rows {
            counts.class[usize::from(y[r as usize])] += weight[r as usize];
            counts.rows += 1;
        }
        let mut g = Grower {
            binned,
            y,
            weight,
            params,
            scratch: vec![0; rows.len()],
            rows,
            features: Vec::with_capacity(binned.n_cols()),
            spare: Vec::new(),
            tree: Tree {
                feature: Vec::new(),
                threshold: Vec::new(),
                left: Vec::new(),
                right: Vec::new(),
                count0: Vec::new(),
                count1: Vec::new(),
                scoring: Scoring::default(),
            },
        };
        g.push_leaf(counts);
        let root = Pending {
            node: 0,
            start: 0,
            end: g.rows.len(),
            depth: 0,
            counts,
            histogram: None,
        };
        let mut stack = Vec::new();
        if g.may_split(&root) {
            stack.push(root);
        }
        while let Some(p) = stack.pop() {
            g.grow_node(p, &mut stack, rng);
        }
        let mut tree = g.tree;
        tree.scoring = Scoring::of(&tree);
        tree
    }

    /// A tree from stored arrays, checked: equal lengths, at least one node, children in range
    /// and after their parent, every node but the root the child of exactly one node (so the
    /// nodes form one tree, without cycles), features below `n_inputs`, finite thresholds and
    /// leaves that received rows.
    pub(crate) fn from_parts(
        feature: Vec<u32>,
        threshold: Vec<f64>,
        left: Vec<u32>,
        right: Vec<u32>,
        count0: Vec<u32>,
        count1: Vec<u32>,
        n_inputs: usize,
    ) -> Result<Self, String> {
        let n = feature.len();
        if n == 0 {
            return Err("a tree has no nodes".into());
        }
        let lengths = [
            threshold.len(),
            left.len(),
            right.len(),
            count0.len(),
            count1.len(),
        ];
        if lengths.iter().any(|&l| l != n) {
            return Err(format!(
                "node arrays of different lengths ({n} features, {lengths:?} others)"
            ));
        }
        let mut has_parent = vec![false; n];
        for i in 0..n {
            if feature[i] as usize >= n_inputs {
                return Err(format!(
                    "node {i} splits on input {}, the model has {n_inputs}",
                    feature[i]
                ));
            }
            if !threshold[i].is_finite() {
                return Err(format!("node {i} has threshold {}", threshold[i]));
            }
            match (left[i] as usize, right[i] as usize) {
                (0, 0) => {
                    if u64::from(count0[i]) + u64::from(count1[i]) == 0 {
                        return Err(format!("leaf {i} received no training rows"));
                    }
                }
                (l, r) => {
                    for child in [l, r] {
                        if child <= i || child >= n {
                            return Err(format!(
                                "node {i} has child {child} (must be in {}..{n})",
                                i + 1
                            ));
                        }
                        if std::mem::replace(&mut has_parent[child], true) {
                            return Err(format!("node {child} has two parents"));
                        }
                    }
                }
            }
        }
        if let Some(orphan) = (1..n).find(|&i| !has_parent[i]) {
            return Err(format!("node {orphan} is unreachable"));
        }
        let mut tree = Self {
            feature,
            threshold,
            left,
            right,
            count0,
            count1,
            scoring: Scoring::default(),
        };
        tree.scoring = Scoring::of(&tree);
        Ok(tree)
    }

    #[cfg(test)]
    pub(crate) fn n_nodes(&self) -> usize {
        self.feature.len()
    }

    /// The leaf that `row` (all model inputs of one row) falls into, walked on the stored
    /// arrays: the reference for [`Tree::add_leaf_shares`].
    #[cfg(test)]
    pub(crate) fn leaf(&self, row: &[f64]) -> usize {
        let mut node = 0;
        loop {
            let left = self.left[node] as usize;
            if left == 0 {
                return node;
            }
            node = if row[self.feature[node] as usize] <= self.threshold[node] {
                left
            } else {
                self.right[node] as usize
            };
        }
    }

    /// The class-1 share of the training rows in `row`'s leaf.
    #[cfg(test)]
    pub(crate) fn predict_row(&self, row: &[f64]) -> f64 {
        self.scoring.proba[self.leaf(row)]
    }

    /// Adds to `sums[i]` the class-1 share of the leaf of row `i` of `rows` (row-major,
    /// `n_cols` inputs per row); `nodes` is scratch space of one entry per row.
    pub(crate) fn add_leaf_shares(
        &self,
        rows: &[f64],
        n_cols: usize,
        nodes: &mut [u32],
        sums: &mut [f64],
    ) {
        let Scoring { proba, next, depth } = &self.scoring;
        nodes.fill(0);
        for _ in 0..*depth {
            for (node, row) in nodes.iter_mut().zip(rows.chunks_exact(n_cols)) {
                let n = *node as usize;
                let goes_left = row[self.feature[n] as usize] <= self.threshold[n];
                *node = next[n][usize::from(goes_left)];
            }
        }
        for (sum, &node) in sums.iter_mut().zip(nodes.iter()) {
            *sum += proba[node as usize];
        }
    }
}

impl Grower<'_> {
    fn push_leaf(&mut self, counts: Counts) -> usize {
        let t = &mut self.tree;
        t.feature.push(0);
        t.threshold.push(0.0);
        t.left.push(0);
        t.right.push(0);
        t.count0.push(counts.class[0]);
        t.count1.push(counts.class[1]);
        t.feature.len() - 1
    }

    /// Whether a node could be split at all: not at the depth limit, not pure, and with rows
    /// enough for two leaves.
    fn may_split(&self, p: &Pending) -> bool {
        self.params.max_depth.is_none_or(|d| p.depth < d)
            && p.counts.class[0] > 0
            && p.counts.class[1] > 0
            && p.counts.rows as usize >= 2 * self.params.min_samples_leaf
    }

    fn histogram(&mut self, start: usize, end: usize) -> Vec<Counts> {
        let mut h = self.spare.pop().unwrap_or_default();
        h.clear();
        h.resize(self.binned.n_slots(), Counts::default());
        let rows = &self.rows[start..end];
        for j in 0..self.binned.n_cols() {
            let column = self.binned.column(j);
            let slots = &mut h[self.binned.offset[j]..self.binned.offset[j + 1]];
            for &r in rows {
                let r = r as usize;
                let slot = &mut slots[usize::from(column[r])];
                slot.class[usize::from(self.y[r])] += self.weight[r];
                slot.rows += 1;
            }
        }
        h
    }

    fn grow_node(&mut self, p: Pending, stack: &mut Vec<Pending>, rng: &mut impl Rng) {
        let mut histogram = match p.histogram {
            Some(h) => h,
            None => self.histogram(p.start, p.end),
        };
        let Some(split) = self.best_split(&histogram, p.counts, rng) else {
            self.spare.push(histogram);
            return;
        };
        let mid = self.partition(p.start, p.end, split.feature, split.bin);
        let left_counts = split.left;
        let right_counts = p.counts.minus(split.left);
        let left = self.push_leaf(left_counts);
        let right = self.push_leaf(right_counts);
        let t = &mut self.tree;
        t.feature[p.node] = split.feature as u32;
        t.threshold[p.node] = split.threshold;
        t.left[p.node] = left as u32;
        t.right[p.node] = right as u32;

        let child = |node, start, end, counts| Pending {
            node,
            start,
            end,
            depth: p.depth + 1,
            counts,
            histogram: None,
        };
        let mut l = child(left, p.start, mid, left_counts);
        let mut r = child(right, mid, p.end, right_counts);
        let (grow_l, grow_r) = (self.may_split(&l), self.may_split(&r));
        let keep = stack.len() + 2 <= KEPT_HISTOGRAMS;
        if keep && (grow_l || grow_r) {
            // Build the smaller child's histogram; the larger one's is the rest of the parent's.
            let (small, large, grow_small, grow_large) = if l.end - l.start <= r.end - r.start {
                (&mut l, &mut r, grow_l, grow_r)
            } else {
                (&mut r, &mut l, grow_r, grow_l)
            };
            if grow_large {
                let h = self.histogram(small.start, small.end);
                for (parent, s) in histogram.iter_mut().zip(&h) {
                    *parent = parent.minus(*s);
                }
                large.histogram = Some(histogram);
                if grow_small {
                    small.histogram = Some(h);
                } else {
                    self.spare.push(h);
                }
            } else {
                self.spare.push(histogram);
                small.histogram = Some(self.histogram(small.start, small.end));
            }
        } else {
            self.spare.push(histogram);
        }
        // Right below left on the stack: the left subtree is grown first.
        if grow_r {
            stack.push(r);
        }
        if grow_l {
            stack.push(l);
        }
    }

    /// The best split of a node over `max_features` inputs drawn without replacement, or
    /// `None` if no examined input splits the node into two leaves of `min_samples_leaf`
    /// rows. The first of equally good splits wins, so a tree is a function of its rng.
    fn best_split(
        &mut self,
        histogram: &[Counts],
        total: Counts,
        rng: &mut impl Rng,
    ) -> Option<Split> {
        let n_cols = self.binned.n_cols();
        let min_leaf = self.params.min_samples_leaf;
        self.features.clear();
        self.features.extend(0..n_cols);
        let mut best: Option<Split> = None;
        let mut examined = 0;
        for i in 0..n_cols {
            if examined == self.params.max_features {
                break;
            }
            // Fisher-Yates, one step at a time: feature i is a uniform draw from the rest.
            let k = rng.random_range(i..n_cols);
            self.features.swap(i, k);
            let j = self.features[i];
            let base = self.binned.offset[j];
            let bins = &histogram[base..self.binned.offset[j + 1]];
            let mut left = Counts::default();
            let mut last: Option<usize> = None;
            let mut occupied = 0;
            for (b, &counts) in bins.iter().enumerate() {
                if counts.rows == 0 {
                    continue;
                }
                occupied += 1;
                if let Some(prev) = last {
                    let right_rows = (total.rows - left.rows) as usize;
                    if left.rows as usize >= min_leaf && right_rows >= min_leaf {
                        let score = left.purity() + total.minus(left).purity();
                        if best.is_none_or(|s| score > s.score) {
                            best = Some(Split {
                                feature: j,
                                bin: prev as u8,
                                threshold: threshold_between(
                                    self.binned.highest[base + prev],
                                    self.binned.lowest[base + b],
                                ),
                                left,
                                score,
                            });
                        }
                    }
                }
                left.add(counts);
                last = Some(b);
            }
            if occupied > 1 {
                examined += 1;
            }
        }
        best
    }

    /// Puts the rows of `start..end` whose bin of `feature` is at most `bin` first, both
    /// groups staying ascending; returns where the second group starts.
    fn partition(&mut self, start: usize, end: usize, feature: usize, bin: u8) -> usize {
        let column = self.binned.column(feature);
        let mut kept = start;
        let mut moved = 0;
        for i in start..end {
            let r = self.rows[i];
            if column[r as usize] <= bin {
                self.rows[kept] = r;
                kept += 1;
            } else {
                self.scratch[moved] = r;
                moved += 1;
            }
        }
        self.rows[kept..end].copy_from_slice(&self.scratch[..moved]);
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha12Rng;

    fn matrix(columns: &[Vec<f64>]) -> Matrix {
        Matrix {
            n_rows: columns[0].len(),
            n_cols: columns.len(),
            values: columns.concat(),
        }
    }

    fn row(x: &Matrix, i: usize) -> Vec<f64> {
        (0..x.n_cols).map(|j| x.column(j)[i]).collect()
    }

    /// Two continuous inputs (thousands of distinct values); label 1 when x0 + x1 / 2 > 0.2,
    /// one row in five flipped; a third input is noise.
    fn continuous(n: usize, seed: u64) -> (Matrix, Vec<u8>) {
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        let cols: Vec<Vec<f64>> = (0..3)
            .map(|_| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let y = (0..n)
            .map(|i| u8::from((cols[0][i] + cols[1][i] / 2.0 > 0.2) != (i % 5 == 0)))
            .collect();
        (matrix(&cols), y)
    }

    fn params(max_depth: u16, min_samples_leaf: usize, max_features: usize) -> TreeParams {
        TreeParams {
            max_depth: Some(max_depth),
            min_samples_leaf,
            max_features,
        }
    }

    fn depth(t: &Tree, node: usize) -> usize {
        if t.left[node] == 0 {
            0
        } else {
            1 + depth(t, t.left[node] as usize).max(depth(t, t.right[node] as usize))
        }
    }

    #[test]
    fn few_distinct_values_get_a_bin_each_many_get_at_most_256_ordered_bins() {
        // Binning few values is exact.
        let few = Binned::new(&matrix(&[vec![3.0, 1.0, 2.0, 1.0, 3.0], vec![0.5; 5]]));
        assert_eq!(few.offset, [0, 3, 4]);
        assert_eq!(few.lowest, [1.0, 2.0, 3.0, 0.5]);
        assert_eq!(few.lowest, few.highest);
        assert_eq!(few.bins, [2, 0, 1, 0, 2, 0, 0, 0, 0, 0]);
        let many: Vec<f64> = (0..10_000)
            .map(|i| f64::from((i * 7919) % 10_000))
            .collect();
        let b = Binned::new(&matrix(std::slice::from_ref(&many)));
        let (lo, hi) = (&b.lowest[..], &b.highest[..]);
        assert_eq!(lo.len(), MAX_BINS);
        assert!(lo.iter().zip(hi).all(|(l, h)| l <= h));
        assert!(hi.windows(2).all(|w| w[0] < w[1]) && lo.windows(2).all(|w| w[0] < w[1]));
        // Every value lies in its bin, and the bins hold about equal numbers of rows.
        let mut sizes = vec![0; MAX_BINS];
        for (i, &v) in many.iter().enumerate() {
            let bin = usize::from(b.column(0)[i]);
            assert!(lo[bin] <= v && v <= hi[bin], "{v} in bin {bin}");
            sizes[bin] += 1;
        }
        assert!(sizes.iter().all(|&s| (38..=41).contains(&s)), "{sizes:?}");
    }

    #[test]
    fn a_value_shared_by_most_rows_leaves_the_rest_finely_binned() {
        // 0..999 once each and 5.5 in 9,000 rows.
        let mut v: Vec<f64> = (0..1000).map(f64::from).collect();
        v.extend(std::iter::repeat_n(5.5, 9000));
        let (lo, hi) = bin_edges(&v);
        assert_eq!(lo.len(), MAX_BINS);
        // The heavy value ends a bin (values are never split across bins) ...
        let heavy = hi
            .iter()
            .position(|&h| h == 5.5)
            .expect("a bin ends at 5.5");
        assert!(lo[heavy] <= 5.5 && (heavy == 0 || hi[heavy - 1] < 5.5));
        // ... and the 994 values above it share the remaining bins evenly (3 or 4 each).
        for b in heavy + 1..MAX_BINS - 1 {
            let width = hi[b] - lo[b] + 1.0;
            assert!(
                (3.0..=5.0).contains(&width),
                "bin {b}: {}..={}",
                lo[b],
                hi[b]
            );
        }
    }

    #[test]
    fn thresholds_lie_between_neighbouring_values() {
        assert_eq!(threshold_between(1.0, 2.0), 1.5);
        let a = 1.0_f64;
        let b = f64::from_bits(a.to_bits() + 1);
        let t = threshold_between(a, b);
        assert!(a <= t && t < b);
        // No overflow to infinity between huge values.
        let t = threshold_between(f64::MAX / 2.0, f64::MAX);
        assert!(t.is_finite() && f64::MAX / 2.0 < t && t < f64::MAX);
    }

    /// Routes every training row through the tree on its raw values and checks each node's
    /// stored counts: they come from (subtracted) histograms of bins, so this checks the
    /// thresholds, the partitions and the histogram subtraction at once.
    fn assert_counts_match_routing(t: &Tree, x: &Matrix, y: &[u8], w: &[u32]) {
        let mut counts = vec![[0u32; 2]; t.n_nodes()];
        for i in 0..x.n_rows {
            if w[i] == 0 {
                continue;
            }
            let r = row(x, i);
            let mut node = 0;
            loop {
                counts[node][usize::from(y[i])] += w[i];
                if t.left[node] == 0 {
                    break;
                }
                node = if r[t.feature[node] as usize] <= t.threshold[node] {
                    t.left[node] as usize
                } else {
                    t.right[node] as usize
                };
            }
        }
        for (n, c) in counts.iter().enumerate() {
            assert_eq!(*c, [t.count0[n], t.count1[n]], "node {n}");
        }
    }

    #[test]
    fn grown_tree_honours_depth_leaf_size_and_its_counts() {
        let (x, y) = continuous(3000, 1);
        let binned = Binned::new(&x);
        let mut rng = ChaCha12Rng::seed_from_u64(5);
        let w: Vec<u32> = (0..x.n_rows).map(|_| rng.random_range(0..3)).collect();
        for (max_depth, min_leaf) in [(1, 1), (4, 7), (12, 30)] {
            let t = Tree::grow(&binned, &y, &w, params(max_depth, min_leaf, 3), &mut rng);
            assert!(t.n_nodes() > 1);
            assert!(depth(&t, 0) <= usize::from(max_depth));
            assert_counts_match_routing(&t, &x, &y, &w);
            // Leaf sizes count distinct rows, so check them on rows with a weight.
            let mut leaf_rows = vec![0; t.n_nodes()];
            for i in (0..x.n_rows).filter(|&i| w[i] > 0) {
                leaf_rows[t.leaf(&row(&x, i))] += 1;
            }
            for n in (0..t.n_nodes()).filter(|&n| t.left[n] == 0) {
                assert!(leaf_rows[n] >= min_leaf, "leaf {n}: {} rows", leaf_rows[n]);
            }
            let stored = Tree::from_parts(
                t.feature.clone(),
                t.threshold.clone(),
                t.left.clone(),
                t.right.clone(),
                t.count0.clone(),
                t.count1.clone(),
                3,
            )
            .expect("a grown tree passes the load checks");
            assert_eq!(stored, t);
        }
    }

    #[test]
    fn unlimited_depth_grows_pure_leaves() {
        let (x, y) = continuous(2000, 2);
        let w = vec![1; x.n_rows];
        let p = TreeParams {
            max_depth: None,
            min_samples_leaf: 1,
            max_features: 3,
        };
        let mut rng = ChaCha12Rng::seed_from_u64(1);
        let t = Tree::grow(&Binned::new(&x), &y, &w, p, &mut rng);
        for (i, &label) in y.iter().enumerate() {
            assert_eq!(t.predict_row(&row(&x, i)), f64::from(label), "row {i}");
        }
        assert_counts_match_routing(&t, &x, &y, &w);
        // Leaves at many depths: the lockstep walk finds the same leaves as the plain one.
        assert!(t.scoring.depth > 8);
        let rows: Vec<f64> = (0..x.n_rows).flat_map(|i| row(&x, i)).collect();
        let mut sums = vec![0.5; x.n_rows];
        t.add_leaf_shares(&rows, 3, &mut vec![7; x.n_rows], &mut sums);
        for (i, &label) in y.iter().enumerate() {
            assert_eq!(sums[i], 0.5 + f64::from(label), "row {i}");
        }
    }

    #[test]
    fn a_stump_splits_at_the_midpoint_of_the_best_gap() {
        let x = matrix(&[vec![0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0]]);
        let y = [0, 0, 0, 0, 1, 1, 1];
        let mut rng = ChaCha12Rng::seed_from_u64(0);
        let t = Tree::grow(&Binned::new(&x), &y, &[1; 7], params(1, 1, 1), &mut rng);
        assert_eq!(t.threshold[0], 6.5);
        assert_eq!(
            (t.count0[1], t.count1[1], t.count0[2], t.count1[2]),
            (4, 0, 0, 3)
        );
        assert_eq!(t.predict_row(&[6.5]), 0.0);
        assert_eq!(t.predict_row(&[6.6]), 1.0);
        // NaN fails `x <= threshold` and goes right, in both walks.
        assert_eq!(t.predict_row(&[f64::NAN]), 1.0);
        let mut sums = [0.0; 3];
        t.add_leaf_shares(&[f64::NAN, 6.5, 6.6], 1, &mut [0; 3], &mut sums);
        assert_eq!(sums, [1.0, 0.0, 1.0]);
    }

    #[test]
    fn leaves_report_the_class_share_of_their_weighted_rows() {
        // One input that cannot separate the classes: a single leaf.
        let x = matrix(&[vec![1.0; 4]]);
        let t = Tree::grow(
            &Binned::new(&x),
            &[0, 1, 1, 0],
            &[3, 1, 2, 0],
            params(5, 1, 1),
            &mut ChaCha12Rng::seed_from_u64(0),
        );
        assert_eq!((t.n_nodes(), t.count0[0], t.count1[0]), (1, 3, 3));
        assert_eq!(t.predict_row(&[1.0]), 0.5);
    }

    #[test]
    fn feature_sampling_examines_max_features_inputs_per_split() {
        // Input 0 carries the label, 1 and 2 are noise: with all inputs examined the root
        // always splits on 0; with one, a third of the trees never see it at the root.
        let (x, y) = continuous(1000, 3);
        let binned = Binned::new(&x);
        let w = vec![1; x.n_rows];
        let roots = |max_features| {
            (0..60)
                .map(|s| {
                    let mut rng = ChaCha12Rng::seed_from_u64(s);
                    Tree::grow(&binned, &y, &w, params(1, 1, max_features), &mut rng).feature[0]
                })
                .collect::<Vec<_>>()
        };
        assert!(roots(3).iter().all(|&f| f == 0));
        let one = roots(1);
        let zeros = one.iter().filter(|&&f| f == 0).count();
        assert!((10..=30).contains(&zeros), "{one:?}");
    }

    #[test]
    fn inputs_constant_in_a_node_do_not_use_up_the_budget() {
        // Inputs 0 and 1 are constant; with max_features 1 the split still finds input 2.
        let x = matrix(&[
            vec![1.0; 6],
            vec![2.0; 6],
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        ]);
        let y = [0, 0, 0, 1, 1, 1];
        for s in 0..10 {
            let mut rng = ChaCha12Rng::seed_from_u64(s);
            let t = Tree::grow(&Binned::new(&x), &y, &[1; 6], params(1, 1, 1), &mut rng);
            assert_eq!((t.feature[0], t.threshold[0]), (2, 2.5), "seed {s}");
        }
    }

    type Parts = (Vec<u32>, Vec<f64>, Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>);

    fn parts(t: &Tree) -> Parts {
        (
            t.feature.clone(),
            t.threshold.clone(),
            t.left.clone(),
            t.right.clone(),
            t.count0.clone(),
            t.count1.clone(),
        )
    }

    #[test]
    fn damaged_trees_are_rejected_by_name() {
        let (x, y) = continuous(500, 4);
        let mut rng = ChaCha12Rng::seed_from_u64(0);
        let t = Tree::grow(&Binned::new(&x), &y, &[1; 500], params(3, 5, 3), &mut rng);
        let leaf = (0..t.n_nodes()).find(|&n| t.left[n] == 0).expect("a leaf");
        let inner = (1..t.n_nodes())
            .find(|&n| t.left[n] != 0)
            .expect("an inner node");
        let check = |damage: &dyn Fn(&mut Parts), want: &str| {
            let mut p = parts(&t);
            damage(&mut p);
            let (f, th, l, r, c0, c1) = p;
            let err = Tree::from_parts(f, th, l, r, c0, c1, 3).expect_err(want);
            assert!(err.contains(want), "{err} (wanted {want})");
        };
        let (f, th, l, r, c0, c1) = parts(&t);
        assert!(Tree::from_parts(f, th, l, r, c0, c1, 3).is_ok());
        check(&|p| p.0[0] = 3, "splits on input 3, the model has 3");
        check(&|p| p.1[0] = f64::NAN, "threshold NaN");
        check(&|p| p.1[0] = f64::INFINITY, "threshold inf");
        check(&|p| p.2[0] = 0, "node 0 has child 0");
        check(&|p| p.2[0] = 99_999, "has child 99999");
        // A cycle needs an edge back to the node or an ancestor.
        check(
            &|p| p.2[inner] = inner as u32,
            &format!("node {inner} has child {inner}"),
        );
        check(&|p| p.3[0] = p.2[0], "two parents");
        check(&|p| p.4.truncate(1), "different lengths");
        check(
            &|p| (p.4[leaf], p.5[leaf]) = (0, 0),
            &format!("leaf {leaf} received no"),
        );
        // Cutting an inner node's children off leaves them unreachable.
        check(&|p| (p.2[inner], p.3[inner]) = (0, 0), "is unreachable");
        let err = Tree::from_parts(vec![], vec![], vec![], vec![], vec![], vec![], 3);
        assert!(err.expect_err("empty").contains("no nodes"));
    }
}
