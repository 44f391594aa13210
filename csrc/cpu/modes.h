// The op's options as the kernels see them (header-light: the kernels include only this).
#pragma once

namespace xite {

enum class Mode : int { Keep = 0, Remove = 1, None = 2 };  // None: P(x) = x
enum class Interp : int { Linear = 0, Slerp = 1 };

}  // namespace xite
