/* hub-server.h — a local Hugging Face hub look-alike for tests (127.0.0.1 only).
 *
 * Serves ROOT/<org>/<name>/... as model repositories: /api/models (search, Link pagination),
 * /api/models/{repo}[/revision/{rev}] (siblings with size and lfs, gated, gguf summary),
 * /api/models/{repo}/tree/{rev} (paginated), /{repo}/resolve/{rev}/{file} (HEAD/GET: *.gguf
 * files are LFS: 302 to a second port playing the CDN with X-Repo-Commit, X-Linked-Etag,
 * X-Linked-Size; other files are served directly with a git blob sha1 etag). Repositories of
 * the organisation "gated" answer 401 without a token, 403 with any token but "hf_good".
 * The CDN supports Range and injects the faults asked for; its bodies are written by hand
 * on a stolen connection so a fault can cut, stall or corrupt them.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  /* Counters: the next N CDN (or direct file) answers get the fault. */
  guint drop;          /* cut the connection half-way through the body */
  guint stall;         /* stop sending half-way for stall_ms, then cut */
  guint status_429;    /* 429 with Retry-After: 1 */
  guint ratelimit_429; /* 429 with only the hub's RateLimit: "resolvers";r=0;t=1 */
  guint status_500;    /* 500 */
  guint corrupt;       /* flip one byte of the body */
  guint ignore_range;  /* answer 200 with the whole file */
  guint wrong_range;   /* Content-Range claims a different total size */
  guint change_etag;   /* the CDN answer carries another ETag */
  guint endless_body;  /* no Content-Length; after the file, junk that never ends */
  /* Switches. */
  gboolean lie_size;          /* HEAD announces X-Linked-Size + 4096 */
  gboolean redirect_loop;     /* resolve redirects to itself */
  gboolean api_redirect_loop; /* API answers redirect A -> B -> A ... */
  gboolean bad_json;          /* API answers are not JSON */
  gboolean endless_json;      /* API answers never end */
  gboolean evil_tree;         /* the tree lists "../../escape.gguf" */
  guint stall_ms;             /* 0: 3000 */
  guint rate;                 /* CDN bytes per second per connection, 0: unlimited */
  guint tree_page;            /* entries per tree page, 0: 1000 */
  /* Niceness of the threads answering requests (Linux; 0: unchanged). A benchmark's stand-in
   * for Hugging Face runs at 19: the real server's CPU is not the user's. */
  int server_nice;
} wh_test_hub_faults;

typedef struct {
  guint cdn_requests;   /* answers the CDN gave (any status) */
  guint range_requests; /* of which asked for a Range */
  guint auth_on_cdn;    /* requests that reached the CDN with an Authorization header */
  guint api_requests;
  char *last_user_agent; /* of the last API request (owned by the caller after get) */
} wh_test_hub_stats;

typedef struct wh_test_hub wh_test_hub;

/* Starts the server on 127.0.0.1 (random ports) in its own thread. */
wh_test_hub *wh_test_hub_start(const char *root, GError **error);
void wh_test_hub_stop(wh_test_hub *hub);
const char *wh_test_hub_url(wh_test_hub *hub); /* "http://127.0.0.1:PORT" */
void wh_test_hub_set_faults(wh_test_hub *hub, const wh_test_hub_faults *faults);
void wh_test_hub_get_stats(wh_test_hub *hub, wh_test_hub_stats *out);
/* The commit id the server reports for @repo_id (40 hex chars, newly allocated). */
char *wh_test_hub_commit(const char *repo_id);

/* Standalone mode: ROOT [--port-file FILE] [--rate N] [--fault NAME=N]...; serves until
 * SIGTERM/SIGINT, writing the URL to stdout (and FILE). */
int wh_test_hub_serve_main(int argc, char **argv);

G_END_DECLS
