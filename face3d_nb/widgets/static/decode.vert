// The face mesh decoded on the GPU: view = pose * (mean + W a) + offset (face3d_nb/view/gpu_packing.py,
// whose emulate() does the same in numpy). The uniforms are one coefficient update: see the protocol
// table in face3d_nb/widgets/page_link.py.
// Defined by the caller: COEFFICIENT_GROUPS (G, 0 without a basis) and BASIS_ROWS (texture height).
// three.js supplies position (the mean shape, model units) and the camera matrices; written in
// GLSL ES 1.00 style, which three.js translates for WebGL 2.

uniform mat3 pose;
uniform vec3 offset;
attribute float vertexIndex;

#if COEFFICIENT_GROUPS > 0
#define BASIS_WIDTH 2048.0
uniform vec4 coefficients[COEFFICIENT_GROUPS];
uniform highp sampler2D basis;

// Texel i of the basis, row-major within BASIS_WIDTH columns; i < 2^24, so the float maths is exact.
vec4 basisTexel(float i) {
  float row = floor(i / BASIS_WIDTH);
  vec2 uv = vec2(i - row * BASIS_WIDTH + 0.5, row + 0.5) / vec2(BASIS_WIDTH, BASIS_ROWS);
  return texture2D(basis, uv);
}
#endif

varying vec3 vViewPosition;

void main() {
  vec3 shape = position;
#if COEFFICIENT_GROUPS > 0
  float first = vertexIndex * float(3 * COEFFICIENT_GROUPS);
  for (int g = 0; g < COEFFICIENT_GROUPS; g++) {
    float i = first + float(3 * g);
    vec4 a = coefficients[g];
    shape += vec3(dot(basisTexel(i), a), dot(basisTexel(i + 1.0), a), dot(basisTexel(i + 2.0), a));
  }
#endif
  vec4 mvPosition = modelViewMatrix * vec4(pose * shape + offset, 1.0);
  vViewPosition = -mvPosition.xyz;
  gl_Position = projectionMatrix * mvPosition;
}
