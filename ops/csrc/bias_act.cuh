// Per-element math of bias_act: y = clamp(act(x + b) * gain), and its derivatives.
#pragma once
#include "common.cuh"

namespace studio_ops {

// Activation ids; ops/_cuda_bias_act.py holds the same table by name.
enum Act : int { kLinear = 0, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish };

constexpr float kSeluScale = 1.0507009873554805f;
constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSoftplusThreshold = 20.0f;  // torch.nn.functional.softplus: linear above this

OPS_HD float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// The `order`-th derivative (0, 1 or 2) of activation `act` at z. Branch conventions at kinks follow
// torch's autograd (relu'(0) = 0, leaky_relu'(0) = alpha, elu'(0) = alpha), and so does NaN: it takes the
// branch torch's comparison sends it to (`z <= 0` false for relu / elu / selu, `z > 0` false for lrelu),
// so NaN propagates through every activation and its derivative matches torch's backward there.
OPS_HD float act_derivative(int act, int order, float z, float alpha) {
  switch (act) {
    case kRelu:
      if (z <= 0) return 0.0f;
      return order == 0 ? z : (order == 1 ? 1.0f : 0.0f);
    case kLrelu:
      return order == 0 ? (z > 0 ? z : z * alpha) : (order == 1 ? (z > 0 ? 1.0f : alpha) : 0.0f);
    case kTanh: {
      const float t = tanhf(z);
      return order == 0 ? t : (order == 1 ? 1.0f - t * t : -2.0f * t * (1.0f - t * t));
    }
    case kSigmoid: {
      const float s = sigmoid(z);
      return order == 0 ? s : (order == 1 ? s * (1.0f - s) : s * (1.0f - s) * (1.0f - 2.0f * s));
    }
    case kElu: {
      if (!(z <= 0)) return order == 0 ? z : (order == 1 ? 1.0f : 0.0f);
      const float e = alpha * expf(z);
      return order == 0 ? e - alpha : e;
    }
    case kSelu: {
      if (!(z <= 0)) return order == 0 ? kSeluScale * z : (order == 1 ? kSeluScale : 0.0f);
      const float e = kSeluScale * kSeluAlpha * expf(z);
      return order == 0 ? e - kSeluScale * kSeluAlpha : e;
    }
    case kSoftplus: {
      if (z > kSoftplusThreshold) return order == 0 ? z : (order == 1 ? 1.0f : 0.0f);
      const float s = sigmoid(z);
      return order == 0 ? log1pf(expf(z)) : (order == 1 ? s : s * (1.0f - s));
    }
    case kSwish: {
      const float s = sigmoid(z);
      const float ds = s * (1.0f - s);
      return order == 0 ? z * s : (order == 1 ? s + z * ds : ds * (2.0f + z * (1.0f - 2.0f * s)));
    }
    default:  // kLinear
      return order == 0 ? z : (order == 1 ? 1.0f : 0.0f);
  }
}

struct BiasActParams {
  int act;
  int order;           // 0: y = clamp(act(z) * gain); n >= 1: y = g * act^(n)(z) * gain * [not clamped]
  float alpha;
  float gain;
  float clamp;         // < 0: no clamp
  int64_t bias_len;    // 0: no bias
  FastDiv bias_stride, bias_axis;  // memory stride and length of the bias axis in x
};

// Element `i` (memory order; x, g, y share one dense layout) of bias_act or of its order-th derivative.
template <typename scalar_t>
OPS_HD void bias_act_element(int64_t i, const scalar_t* x, const scalar_t* b, const scalar_t* g, scalar_t* y,
                             const BiasActParams& p) {
  float z = static_cast<float>(x[i]);
  if (p.bias_len > 0) z += static_cast<float>(b[fast_mod(fast_div(i, p.bias_stride), p.bias_axis)]);
  const float v = act_derivative(p.act, 0, z, p.alpha) * p.gain;
  if (p.order == 0) {
    // Not fminf/fmaxf: they would turn NaN into -clamp, and NaN must propagate as in torch.clamp.
    const bool clamped = p.clamp >= 0 && fabsf(v) > p.clamp;
    y[i] = static_cast<scalar_t>(clamped ? copysignf(p.clamp, v) : v);
    return;
  }
  // torch.clamp passes the incoming gradient on the closed interval [-clamp, clamp] only (not at NaN) and
  // zeroes it elsewhere; the activation's backward then multiplies, so a NaN derivative stays NaN.
  const bool passes = p.clamp < 0 || fabsf(v) <= p.clamp;
  const float incoming = passes ? static_cast<float>(g[i]) : 0.0f;
  y[i] = static_cast<scalar_t>(incoming * act_derivative(p.act, p.order, z, p.alpha) * p.gain);
}

}  // namespace studio_ops
