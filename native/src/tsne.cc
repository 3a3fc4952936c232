// Barnes-Hut t-SNE's gradient: a quadtree for the repulsion, sparse P for the attraction.
// The tree mirrors src/core/quadtree.ts step for step (the same counting-sort build,
// depth-first node numbering, stack order and expressions), and the gradient the reference
// kernel's, which makes them exact oracles; only the per-point work runs in parallel, each
// point writing its own outputs, and Z is summed in index order.
#include "tsne.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "threadpool.h"

namespace saekit {
namespace {

constexpr int kMaxDepth = 48;

// One cell, all it needs on one or two cache lines (the traversal reads little else).
struct Node {
  double com_x, com_y;
  double side2;  // side * side, as the opening test compares it
  int32_t count;
  int32_t first_child, child_count;  // children: nodes first_child .. first_child + child_count - 1
  int32_t lo;                         // a leaf's points: order[lo .. lo + count)
};

struct QuadTree {
  const double* Y;
  std::vector<Node> nodes;
  std::vector<int32_t> order, scratch;
  std::vector<double> leaf_xy;  // Y in tree order, so a leaf's points sit together
  int32_t n_nodes = 0;

  QuadTree(const double* y, long n) : Y(y), order(n), scratch(n) {
    for (long i = 0; i < n; i++) order[i] = static_cast<int32_t>(i);
    nodes.resize(2 * n + 16);
    double min_x = Y[0], max_x = Y[0], min_y = Y[1], max_y = Y[1];
    for (long i = 0; i < n; i++) {
      min_x = std::min(min_x, Y[2 * i]); max_x = std::max(max_x, Y[2 * i]);
      min_y = std::min(min_y, Y[2 * i + 1]); max_y = std::max(max_y, Y[2 * i + 1]);
    }
    const double s = std::max(std::max(max_x - min_x, max_y - min_y), 1e-12) * (1 + 1e-9);
    n_nodes = 1;
    build(0, 0, static_cast<int32_t>(n), (min_x + max_x) / 2, (min_y + max_y) / 2, s, 0);
    leaf_xy.resize(2 * n);
    for (long p = 0; p < n; p++) {
      leaf_xy[2 * p] = Y[2 * order[p]];
      leaf_xy[2 * p + 1] = Y[2 * order[p] + 1];
    }
  }

  int quadrant(int32_t i, double cx, double cy) const {
    return (Y[2 * i] >= cx ? 1 : 0) | (Y[2 * i + 1] >= cy ? 2 : 0);
  }

  void build(int32_t id, int32_t begin, int32_t end, double cx, double cy, double s, int depth) {
    double sx = 0, sy = 0;
    for (int32_t p = begin; p < end; p++) { sx += Y[2 * order[p]]; sy += Y[2 * order[p] + 1]; }
    const int32_t n = end - begin;
    {
      Node& node = nodes[id];
      node.com_x = sx / n;
      node.com_y = sy / n;
      node.side2 = s * s;
      node.count = n;
      node.lo = begin;
      node.first_child = 0;
      node.child_count = 0;
    }
    if (n == 1 || depth >= kMaxDepth) return;

    int32_t starts[5] = {0, 0, 0, 0, 0};
    for (int32_t p = begin; p < end; p++) starts[quadrant(order[p], cx, cy) + 1]++;
    for (int q = 0; q < 4; q++) starts[q + 1] += starts[q];
    int32_t fill[4] = {starts[0], starts[1], starts[2], starts[3]};
    for (int32_t p = begin; p < end; p++) scratch[begin + fill[quadrant(order[p], cx, cy)]++] = order[p];
    std::copy(scratch.begin() + begin, scratch.begin() + end, order.begin() + begin);

    int children[4], n_children = 0;
    for (int q = 0; q < 4; q++) if (starts[q + 1] > starts[q]) children[n_children++] = q;
    if (static_cast<size_t>(n_nodes + n_children) > nodes.size()) nodes.resize(nodes.size() * 2);
    const int32_t first = n_nodes;
    n_nodes += n_children;
    nodes[id].first_child = first;
    nodes[id].child_count = n_children;
    const double half = s / 2;
    for (int c = 0; c < n_children; c++) {
      const int q = children[c];
      build(first + c, begin + starts[q], begin + starts[q + 1], cx + (q & 1 ? half : -half) / 2,
            cy + (q & 2 ? half : -half) / 2, half, depth + 1);
    }
  }

  void repulsion(long i, double angle, double* force, double* z_out) const {
    const double xi = Y[2 * i], yi = Y[2 * i + 1];
    const double angle2 = angle * angle;
    double z = 0, fx = 0, fy = 0;
    int32_t stack[4 * kMaxDepth + 8];
    int top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const Node& node = nodes[stack[--top]];
      if (node.child_count == 0) {
        for (int32_t p = node.lo; p < node.lo + node.count; p++) {
          if (order[p] == i) continue;
          const double dx = xi - leaf_xy[2 * p], dy = yi - leaf_xy[2 * p + 1];
          const double w = 1 / (1 + dx * dx + dy * dy);
          z += w;
          fx += w * w * dx;
          fy += w * w * dy;
        }
        continue;
      }
      const double dx = xi - node.com_x, dy = yi - node.com_y;
      const double d2 = dx * dx + dy * dy;
      if (node.side2 < angle2 * d2) {
        const double c = node.count;
        const double w = 1 / (1 + d2);
        z += c * w;
        fx += c * w * w * dx;
        fy += c * w * w * dy;
        continue;
      }
      for (int32_t c = 0; c < node.child_count; c++) stack[top++] = node.first_child + c;
    }
    force[2 * i] = fx;
    force[2 * i + 1] = fy;
    *z_out = z;
  }
};

}  // namespace

double tsne_gradient(const double* Y, long n, const int32_t* row_ptr, const int32_t* col, const double* val,
                     double exaggeration, double angle, double* grad) {
  if (n == 0) return 0;
  std::vector<double> force(2 * n, 0.0), z(n, 0.0);
  if (n > 1) {
    const QuadTree tree(Y, n);
    parallel_chunks(n, 256, [&](long begin, long end) {
      for (long p = begin; p < end; p++) {
        const long i = tree.order[p];  // tree order: neighbouring points open the same cells
        tree.repulsion(i, angle, force.data(), &z[i]);
      }
    });
  }
  double Z = 0;
  for (long i = 0; i < n; i++) Z += z[i];
  parallel_chunks(n, 1024, [&](long begin, long end) {
    for (long i = begin; i < end; i++) {
      double ax = 0, ay = 0;
      for (int32_t e = row_ptr[i]; e < row_ptr[i + 1]; e++) {
        const int32_t j = col[e];
        const double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
        const double pw = val[e] / (1 + dx * dx + dy * dy);
        ax += pw * dx;
        ay += pw * dy;
      }
      grad[2 * i] = 4 * (exaggeration * ax - force[2 * i] / Z);
      grad[2 * i + 1] = 4 * (exaggeration * ay - force[2 * i + 1] / Z);
    }
  });
  return Z;
}

}  // namespace saekit
