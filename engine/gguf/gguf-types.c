/* gguf-types.c — the ggml type table (block-formats.md §3). */
#include "config.h"

#include "gguf-types.h"

#include <string.h>

/* Indexed by type id; removed ids have a NULL name. */
static const wh_type_traits type_table[WH_TYPE_COUNT] = {
    [WH_TYPE_F32] = {"F32", 1, 4, FALSE},
    [WH_TYPE_F16] = {"F16", 1, 2, FALSE},
    [WH_TYPE_Q4_0] = {"Q4_0", 32, 18, TRUE},
    [WH_TYPE_Q4_1] = {"Q4_1", 32, 20, TRUE},
    [WH_TYPE_Q5_0] = {"Q5_0", 32, 22, TRUE},
    [WH_TYPE_Q5_1] = {"Q5_1", 32, 24, TRUE},
    [WH_TYPE_Q8_0] = {"Q8_0", 32, 34, TRUE},
    [WH_TYPE_Q8_1] = {"Q8_1", 32, 36, TRUE},
    [WH_TYPE_Q2_K] = {"Q2_K", 256, 84, TRUE},
    [WH_TYPE_Q3_K] = {"Q3_K", 256, 110, TRUE},
    [WH_TYPE_Q4_K] = {"Q4_K", 256, 144, TRUE},
    [WH_TYPE_Q5_K] = {"Q5_K", 256, 176, TRUE},
    [WH_TYPE_Q6_K] = {"Q6_K", 256, 210, TRUE},
    [WH_TYPE_Q8_K] = {"Q8_K", 256, 292, TRUE},
    [WH_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66, TRUE},
    [WH_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74, TRUE},
    [WH_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98, TRUE},
    [WH_TYPE_IQ1_S] = {"IQ1_S", 256, 50, TRUE},
    [WH_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18, TRUE},
    [WH_TYPE_IQ3_S] = {"IQ3_S", 256, 110, TRUE},
    [WH_TYPE_IQ2_S] = {"IQ2_S", 256, 82, TRUE},
    [WH_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136, TRUE},
    [WH_TYPE_I8] = {"I8", 1, 1, FALSE},
    [WH_TYPE_I16] = {"I16", 1, 2, FALSE},
    [WH_TYPE_I32] = {"I32", 1, 4, FALSE},
    [WH_TYPE_I64] = {"I64", 1, 8, FALSE},
    [WH_TYPE_F64] = {"F64", 1, 8, FALSE},
    [WH_TYPE_IQ1_M] = {"IQ1_M", 256, 56, TRUE},
    [WH_TYPE_BF16] = {"BF16", 1, 2, FALSE},
    [WH_TYPE_TQ1_0] = {"TQ1_0", 256, 54, TRUE},
    [WH_TYPE_TQ2_0] = {"TQ2_0", 256, 66, TRUE},
    [WH_TYPE_MXFP4] = {"MXFP4", 32, 17, TRUE},
    [WH_TYPE_NVFP4] = {"NVFP4", 64, 36, TRUE},
    [WH_TYPE_Q1_0] = {"Q1_0", 128, 18, TRUE},
    [WH_TYPE_Q2_0] = {"Q2_0", 64, 18, TRUE},
};

const wh_type_traits *
wh_type_get_traits(wh_type type)
{
  if ((guint)type >= WH_TYPE_COUNT || type_table[type].name == NULL)
    return NULL;
  return &type_table[type];
}

gboolean
wh_type_is_valid(guint32 id)
{
  return id < WH_TYPE_COUNT && type_table[id].name != NULL;
}

const char *
wh_type_name(wh_type type)
{
  const wh_type_traits *t = wh_type_get_traits(type);
  return t ? t->name : "?";
}

wh_type
wh_type_from_name(const char *name)
{
  if (name == NULL)
    return WH_TYPE_INVALID;
  for (guint i = 0; i < WH_TYPE_COUNT; i++)
    if (type_table[i].name && g_ascii_strcasecmp(type_table[i].name, name) == 0)
      return (wh_type)i;
  return WH_TYPE_INVALID;
}

guint64
wh_type_row_size(wh_type type, guint64 n_elements)
{
  const wh_type_traits *t = wh_type_get_traits(type);
  if (t == NULL || n_elements % t->block_size != 0)
    return 0;
  guint64 blocks = n_elements / t->block_size;
  if (blocks > G_MAXUINT64 / t->type_size)
    return 0;
  return blocks * t->type_size;
}

double
wh_type_bits_per_weight(wh_type type)
{
  const wh_type_traits *t = wh_type_get_traits(type);
  return t ? (double)t->type_size * 8.0 / (double)t->block_size : 0.0;
}

/* ftype-mixes.md, "ftype ids and base type". */
static const struct {
  guint32 id;
  const char *name;
  wh_type base;
} ftype_table[] = {
    {0, "ALL_F32", WH_TYPE_F32},      {1, "F16", WH_TYPE_F16},
    {2, "Q4_0", WH_TYPE_Q4_0},        {3, "Q4_1", WH_TYPE_Q4_1},
    {7, "Q8_0", WH_TYPE_Q8_0},        {8, "Q5_0", WH_TYPE_Q5_0},
    {9, "Q5_1", WH_TYPE_Q5_1},        {10, "Q2_K", WH_TYPE_Q2_K},
    {11, "Q3_K_S", WH_TYPE_Q3_K},     {12, "Q3_K_M", WH_TYPE_Q3_K},
    {13, "Q3_K_L", WH_TYPE_Q3_K},     {14, "Q4_K_S", WH_TYPE_Q4_K},
    {15, "Q4_K_M", WH_TYPE_Q4_K},     {16, "Q5_K_S", WH_TYPE_Q5_K},
    {17, "Q5_K_M", WH_TYPE_Q5_K},     {18, "Q6_K", WH_TYPE_Q6_K},
    {19, "IQ2_XXS", WH_TYPE_IQ2_XXS}, {20, "IQ2_XS", WH_TYPE_IQ2_XS},
    {21, "Q2_K_S", WH_TYPE_Q2_K},     {22, "IQ3_XS", WH_TYPE_IQ3_S},
    {23, "IQ3_XXS", WH_TYPE_IQ3_XXS}, {24, "IQ1_S", WH_TYPE_IQ1_S},
    {25, "IQ4_NL", WH_TYPE_IQ4_NL},   {26, "IQ3_S", WH_TYPE_IQ3_S},
    {27, "IQ3_M", WH_TYPE_IQ3_S},     {28, "IQ2_S", WH_TYPE_IQ2_XS},
    {29, "IQ2_M", WH_TYPE_IQ2_S},     {30, "IQ4_XS", WH_TYPE_IQ4_XS},
    {31, "IQ1_M", WH_TYPE_IQ1_M},     {32, "BF16", WH_TYPE_BF16},
    {36, "TQ1_0", WH_TYPE_TQ1_0},     {37, "TQ2_0", WH_TYPE_TQ2_0},
};

const char *
wh_ftype_name(guint32 id)
{
  for (guint i = 0; i < G_N_ELEMENTS(ftype_table); i++)
    if (ftype_table[i].id == id)
      return ftype_table[i].name;
  return NULL;
}

gint
wh_ftype_from_name(const char *name)
{
  if (name == NULL)
    return -1;
  if (g_ascii_strcasecmp(name, "F32") == 0)
    return 0;
  for (guint i = 0; i < G_N_ELEMENTS(ftype_table); i++)
    if (g_ascii_strcasecmp(ftype_table[i].name, name) == 0)
      return (gint)ftype_table[i].id;
  return -1;
}

wh_type
wh_ftype_base_type(guint32 id)
{
  for (guint i = 0; i < G_N_ELEMENTS(ftype_table); i++)
    if (ftype_table[i].id == id)
      return ftype_table[i].base;
  return WH_TYPE_INVALID;
}
