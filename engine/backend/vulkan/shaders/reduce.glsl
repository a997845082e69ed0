/* reduce.glsl — workgroup-wide sum and max of one float per thread. Every thread must call
 * them (they contain barriers when the workgroup spans several subgroups); every thread gets
 * the result. Subgroup operations do the work inside a subgroup, shared memory combines the
 * subgroups (at most 64 of them): two barriers instead of a log2(WG) tree, which matters on
 * CPU-based devices where a barrier is a context switch. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

shared float red[64];

float wg_sum(float v)
{
  v = subgroupAdd(v);
  if (gl_NumSubgroups == 1)
    return v;
  if (subgroupElect())
    red[gl_SubgroupID] = v;
  barrier();
  float r = 0.0;
  for (uint s = 0; s < gl_NumSubgroups; s++)
    r += red[s];
  barrier();
  return r;
}

float wg_max(float v)
{
  v = subgroupMax(v);
  if (gl_NumSubgroups == 1)
    return v;
  if (subgroupElect())
    red[gl_SubgroupID] = v;
  barrier();
  float r = red[0];
  for (uint s = 1; s < gl_NumSubgroups; s++)
    r = max(r, red[s]);
  barrier();
  return r;
}
