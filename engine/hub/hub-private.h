/* hub-private.h — what hub.c, hub-download.c and hub-gguf.c share. Not installed. */
#pragma once

#include <libsoup/soup.h>
#include <json-glib/json-glib.h>
#include "hub.h"

G_BEGIN_DECLS

#define WH_HUB_MAX_REDIRECTS 5
#define WH_HUB_MAX_JSON (64u << 20) /* an API answer larger than this is refused */

struct wh_hub {
  char *endpoint; /* no trailing slash */
  GUri *endpoint_uri;
  char *home;
  char *cache_dir; /* home/hub */
  char *user_agent;
  gboolean offline;
  guint timeout;
  double retry_base, retry_max;
  guint max_retries;
  wh_hub_free_space_func free_space;
  gpointer free_space_data;
  GMutex lock; /* guards token */
  char *token;
};

/* A new session for one thread / one operation (sessions are not shared across threads). */
SoupSession *wh_hub_session_new(wh_hub *hub);

/* A message for @url; Authorization added only when @url is on the endpoint's host and port;
 * automatic redirects disabled (we follow them by hand). NULL + error on a bad URL. */
SoupMessage *wh_hub_message_new(wh_hub *hub, const char *method, const char *url, GError **error);

/* Maps a non-2xx status to a plain-language error. @what names the thing ("model org/x"). */
void wh_hub_set_status_error(wh_hub *hub, SoupMessage *msg, const char *what, GError **error);

/* TRUE for statuses worth retrying: 408, 429, 5xx. */
gboolean wh_hub_status_is_retriable(guint status);
/* TRUE for GErrors worth retrying: timeouts, connection resets, closed connections. */
gboolean wh_hub_error_is_retriable(const GError *error);
/* When @local is a TLS failure (untrusted or invalid certificate, handshake refused), sets
 * WH_HUB_ERROR_TLS on @error with a message naming @url's host and returns TRUE. Such an error
 * is never retried: no token or byte is exchanged with that server. */
gboolean wh_hub_set_tls_error(const GError *local, const char *url, GError **error);

/* Sleeps the backoff for retry number @attempt (0-based), or Retry-After from @msg (may be
 * NULL) when given, capped by the hub's retry_max. FALSE when cancelled meanwhile. */
gboolean wh_hub_backoff(wh_hub *hub, guint attempt, SoupMessage *msg, GCancellable *cancellable);

/* Resolves a Location header against @base; only http(s) results; NULL + error otherwise. */
char *wh_hub_resolve_location(const char *base, const char *location, GError **error);

/* GET @url (@what names it in errors, NULL: the URL) following up to WH_HUB_MAX_REDIRECTS
 * redirects, retrying per the hub's policy, reading at most @max_bytes of body (more: error).
 * @range_end >= 0 asks for bytes 0..range_end-ish via "Range: bytes=@range_start-@range_end".
 * Returns the body; *@out_msg (may be NULL) gets the final message (ref). */
GBytes *wh_hub_get(wh_hub *hub, SoupSession *session, const char *url, const char *what,
                   gint64 range_start, gint64 range_end, gsize max_bytes, SoupMessage **out_msg,
                   GCancellable *cancellable, GError **error);

/* GET and parse JSON; *@link_next (may be NULL) gets the Link rel="next" URL or NULL. */
JsonNode *wh_hub_get_json(wh_hub *hub, SoupSession *session, const char *url, const char *what,
                          char **link_next, GCancellable *cancellable, GError **error);

/* The rel="next" target of a Link header value, newly allocated, or NULL. */
char *wh_hub_parse_link_next(const char *link);

/* "https://host/org/name/resolve/REV/FILE" with each part escaped. */
char *wh_hub_resolve_url(wh_hub *hub, const char *repo_id, const char *revision,
                         const char *filename);

/* Etag without quotes and W/ prefix, newly allocated (NULL stays NULL). */
char *wh_hub_normalize_etag(const char *etag);
gboolean wh_hub_is_sha256_hex(const char *s);

/* Sets G_IO_ERROR_CANCELLED-ish WH_HUB_ERROR_CANCELLED when @cancellable fired. */
gboolean wh_hub_check_cancelled(GCancellable *cancellable, GError **error);

G_END_DECLS
