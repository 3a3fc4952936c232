// Barnes-Hut t-SNE's repulsive forces (the native twin of src/core/quadtree.ts).
#pragma once

#include <cstdint>

namespace saekit {

// Where a point's own cell never stands in for it (angle^2 < 1/2).
constexpr double kMaxTsneAngle = 0.7;

// The Barnes-Hut gradient of KL(exaggeration * P || Q) at Y [n, 2] into grad [n, 2]:
//   grad_i = 4 (exaggeration * sum_j p_ij w_ij (y_i - y_j) - sum_{j != i} w_ij^2 (y_i - y_j) / Z)
// with w_ij = 1 / (1 + |y_i - y_j|^2), Z = sum_{i != j} w_ij, P sparse (CSR: row i's entries
// col/val[row_ptr[i] .. row_ptr[i+1])), and the repulsive sums from a quadtree in which a
// cell of side s whose centre of mass lies at distance r stands in for its points when
// s < angle * r. The same tree, visiting order and arithmetic as quadtree.ts and the
// reference kernel, so the result is theirs to the bit; points are spread over the thread
// pool. Y must be finite; 0 <= angle <= 0.7. Returns Z.
double tsne_gradient(const double* Y, long n, const int32_t* row_ptr, const int32_t* col, const double* val,
                     double exaggeration, double angle, double* grad);

}  // namespace saekit
