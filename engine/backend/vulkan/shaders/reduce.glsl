/* reduce.glsl — workgroup-wide sum and max over a shared array of WG floats
 * (WG a power of two). Every thread must call them (they contain barriers);
 * every thread gets the result. */
shared float red[WG];

float wg_sum(float v)
{
  const uint tid = gl_LocalInvocationID.x;
  red[tid] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s)
      red[tid] += red[tid + s];
    barrier();
  }
  const float r = red[0];
  barrier();
  return r;
}

float wg_max(float v)
{
  const uint tid = gl_LocalInvocationID.x;
  red[tid] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s)
      red[tid] = max(red[tid], red[tid + s]);
    barrier();
  }
  const float r = red[0];
  barrier();
  return r;
}
