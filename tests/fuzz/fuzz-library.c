/* fuzz-library.c — the library's Ollama manifest parser on arbitrary bytes: it must accept only
 * manifests whose model (and projector) digests are 64 hex digits, so no blob path built from
 * them can leave the store. */
#include "config.h"

#include "fuzz-main.h"
#include "library/library.h"

#include <string.h>

static guint64 sink;

static void
check_digest(const char *hex)
{
  g_assert_cmpuint(strlen(hex), ==, 64);
  for (const char *p = hex; *p; p++)
    g_assert_true(g_ascii_isdigit(*p) || (*p >= 'a' && *p <= 'f'));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *model = NULL, *projector = NULL;
  guint64 msize = 0;
  GError *error = NULL;
  if (wh_library_parse_ollama_manifest((const char *)data, size, &model, &projector, &msize,
                                       &error)) {
    g_assert_no_error(error);
    check_digest(model);
    if (projector)
      check_digest(projector);
    sink += msize + strlen(model);
  } else {
    g_assert_nonnull(error);
    g_assert_null(model);
    g_assert_null(projector);
    g_error_free(error);
  }
  g_free(model);
  g_free(projector);
  return 0;
}

static void
add_string(GPtrArray *seeds, const char *s)
{
  g_ptr_array_add(seeds, g_bytes_new(s, strlen(s)));
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  add_string(seeds,
             "{\"schemaVersion\":2,\"mediaType\":\"application/"
             "vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":\"application/"
             "vnd.docker.container.image.v1+json\",\"digest\":\"sha256:"
             "34bb5ab01051a11372a91f4c6e5c8c6d4d0c1f1de7b8d1a3e1c4dd5b5c6f1e2a\",\"size\":485},"
             "\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":"
             "\"sha256:74701a8c35f6c8d9a4b91f3f3497643001d63e0c7a84e085bed452548fa88d45\","
             "\"size\":1321082688},{\"mediaType\":\"application/vnd.ollama.image.projector\","
             "\"digest\":\"sha256:"
             "ECE5E659647A20A5C28AB9EEA1C12A1AD430BC0F2A27021D00AD103B3BF5206F\",\"size\":1},"
             "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:"
             "966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396\",\"size\":1429}]}");
  add_string(seeds, "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
                    "\"digest\":\"sha256:../../../../etc/passwd\",\"size\":-1}]}");
  add_string(seeds, "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\"},null,"
                    "[],{\"digest\":7}]}");
  add_string(seeds, "[{\"layers\":[]}]");
}
