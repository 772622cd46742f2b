// The face mesh decoded on the GPU: view = pose * (mean + W a) + offset (face3d_nb/view/gpu_packing.py,
// whose emulate() does the same in numpy). The uniforms are one coefficient update: see the protocol
// table in face3d_nb/widgets/page_link.py.
// Defined by the caller: COEFFICIENT_GROUPS (G, 0 without a basis) and, with a basis, BASIS_ROWS
// (texture height), BASIS_SLOTS (texel slots per vertex and axis) and BASIS_BITS (16: half floats,
// 12: bytes; the layouts are in gpu_packing's docstring).
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

#if BASIS_BITS == 12
// The bytes of texel i (three.js hands them over as byte / 255).
vec4 basisBytes(float i) {
  return floor(basisTexel(i) * 255.0 + 0.5);
}

// Axis c of groups 2p and 2p + 1 of the vertex whose slots start at texel first: their high bytes
// (slots 2p, 2p + 1) and one texel of both groups' low four bits (slot G + p). Each value u is 12
// bits; its deformation is (u - 2048) times the coefficient's scale, which coefficients include.
float pairDeformation(float first, int p, float c) {
  vec4 low = basisBytes(first + float(3 * (COEFFICIENT_GROUPS + p)) + c);
  vec4 upper = floor(low / 16.0);
  float sum = dot(16.0 * basisBytes(first + float(6 * p) + c) + upper - 2048.0, coefficients[2 * p]);
  if (2 * p + 1 < COEFFICIENT_GROUPS) {
    sum += dot(16.0 * basisBytes(first + float(6 * p + 3) + c) + low - 16.0 * upper - 2048.0, coefficients[2 * p + 1]);
  }
  return sum;
}
#endif
#endif

varying vec3 vViewPosition;

void main() {
  vec3 shape = position;
#if COEFFICIENT_GROUPS > 0
  float first = vertexIndex * float(3 * BASIS_SLOTS);
#if BASIS_BITS == 12
  for (int p = 0; p < BASIS_SLOTS - COEFFICIENT_GROUPS; p++) {
    shape += vec3(pairDeformation(first, p, 0.0), pairDeformation(first, p, 1.0), pairDeformation(first, p, 2.0));
  }
#else
  for (int g = 0; g < COEFFICIENT_GROUPS; g++) {
    float i = first + float(3 * g);
    vec4 a = coefficients[g];
    shape += vec3(dot(basisTexel(i), a), dot(basisTexel(i + 1.0), a), dot(basisTexel(i + 2.0), a));
  }
#endif
#endif
  vec4 mvPosition = modelViewMatrix * vec4(pose * shape + offset, 1.0);
  vViewPosition = -mvPosition.xyz;
  gl_Position = projectionMatrix * mvPosition;
}
