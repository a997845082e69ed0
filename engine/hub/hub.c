/* hub.c — configuration, HTTP plumbing, the JSON API (search, model info, tree), file name
 * classification and grouping, the cache listing, and the job wrappers. Contract in hub.h.
 *
 * Implementation notes
 * --------------------
 * Sessions are per operation (libsoup sessions are used from one thread at a time); the
 * client state (wh_hub) is immutable except the token, which sits under a mutex. Redirects
 * are never followed by libsoup: wh_hub_get() follows at most WH_HUB_MAX_REDIRECTS by hand
 * and wh_hub_message_new() decides per URL whether the Authorization header goes along
 * (only to the endpoint's scheme, host and port). JSON answers are read into memory up to
 * WH_HUB_MAX_JSON and every field is type-checked before use: a field of the wrong type is
 * treated as absent, a required one missing is a WH_HUB_ERROR_PROTOCOL.
 */
#include "config.h"

#include "hub-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

G_DEFINE_QUARK(wh - hub - error - quark, wh_hub_error)

/* --- configuration ---------------------------------------------------------------------- */

void
wh_hub_default_config(wh_hub_config *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  cfg->offline = -1;
}

static gboolean
env_true(const char *name)
{
  const char *v = g_getenv(name);
  return v && (g_ascii_strcasecmp(v, "1") == 0 || g_ascii_strcasecmp(v, "true") == 0 ||
               g_ascii_strcasecmp(v, "yes") == 0 || g_ascii_strcasecmp(v, "on") == 0);
}

static char *
read_token_file(const char *home)
{
  const char *p = g_getenv("HF_TOKEN_PATH");
  g_autofree char *path = p && *p ? g_strdup(p) : g_build_filename(home, "token", NULL);
  char *contents = NULL;
  if (!g_file_get_contents(path, &contents, NULL, NULL))
    return NULL;
  g_strstrip(contents);
  if (!*contents) {
    g_free(contents);
    return NULL;
  }
  return contents;
}

wh_hub *
wh_hub_new(const wh_hub_config *cfg_in, GError **error)
{
  wh_hub_config defaults;
  const wh_hub_config *cfg = cfg_in;
  if (!cfg) {
    wh_hub_default_config(&defaults);
    cfg = &defaults;
  }
  const char *endpoint = cfg->endpoint ? cfg->endpoint : g_getenv("HF_ENDPOINT");
  if (!endpoint || !*endpoint)
    endpoint = "https://huggingface.co";

  g_autofree char *ep = g_strdup(endpoint);
  gsize n = strlen(ep);
  while (n > 0 && ep[n - 1] == '/')
    ep[--n] = '\0';
  GUri *uri = g_uri_parse(ep, G_URI_FLAGS_NONE, NULL);
  if (!uri || !g_uri_get_host(uri) ||
      (g_strcmp0(g_uri_get_scheme(uri), "http") != 0 &&
       g_strcmp0(g_uri_get_scheme(uri), "https") != 0)) {
    if (uri)
      g_uri_unref(uri);
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
                "hub endpoint '%s' is not an http(s) URL; check HF_ENDPOINT", ep);
    return NULL;
  }

  wh_hub *hub = g_new0(wh_hub, 1);
  g_mutex_init(&hub->lock);
  hub->endpoint = g_steal_pointer(&ep);
  hub->endpoint_uri = uri;
  if (cfg->home)
    hub->home = g_strdup(cfg->home);
  else if (g_getenv("HF_HOME") && *g_getenv("HF_HOME"))
    hub->home = g_strdup(g_getenv("HF_HOME"));
  else
    hub->home = g_build_filename(g_get_user_cache_dir(), "huggingface", NULL);
  hub->cache_dir = g_build_filename(hub->home, "hub", NULL);
  hub->user_agent = g_strdup_printf("Whittle/%s (GNOME desktop app; +https://github.com/whittle; "
                                    "glib/%u.%u)",
                                    PACKAGE_VERSION, glib_major_version, glib_minor_version);
  hub->offline = cfg->offline < 0 ? env_true("HF_HUB_OFFLINE") : cfg->offline != 0;
  hub->timeout = cfg->timeout_seconds ? cfg->timeout_seconds : 30;
  hub->retry_base = cfg->retry_base_seconds > 0 ? cfg->retry_base_seconds : 1.0;
  hub->retry_max = cfg->retry_max_seconds > 0 ? cfg->retry_max_seconds : 60.0;
  hub->max_retries = cfg->max_retries ? cfg->max_retries : 8;
  hub->free_space = cfg->free_space;
  hub->free_space_data = cfg->free_space_data;

  if (cfg->token)
    wh_hub_set_token(hub, cfg->token);
  else if (!cfg->no_token) {
    const char *t = g_getenv("HF_TOKEN");
    if (t && *t)
      wh_hub_set_token(hub, t);
    else {
      g_autofree char *ft = read_token_file(hub->home);
      wh_hub_set_token(hub, ft);
    }
  }
  return hub;
}

void
wh_hub_free(wh_hub *hub)
{
  if (!hub)
    return;
  if (hub->token)
    memset(hub->token, 0, strlen(hub->token));
  g_free(hub->token);
  g_mutex_clear(&hub->lock);
  g_free(hub->endpoint);
  g_uri_unref(hub->endpoint_uri);
  g_free(hub->home);
  g_free(hub->cache_dir);
  g_free(hub->user_agent);
  g_free(hub);
}

void
wh_hub_set_token(wh_hub *hub, const char *token)
{
  g_mutex_lock(&hub->lock);
  if (hub->token)
    memset(hub->token, 0, strlen(hub->token));
  g_free(hub->token);
  hub->token = NULL;
  if (token && *token) {
    /* A token is printable ASCII: anything else would let a header be injected. */
    gboolean ok = TRUE;
    for (const char *c = token; *c; c++)
      if ((guchar)*c <= 0x20 || (guchar)*c >= 0x7f)
        ok = FALSE;
    if (ok)
      hub->token = g_strdup(token);
  }
  g_mutex_unlock(&hub->lock);
}

gboolean
wh_hub_has_token(wh_hub *hub)
{
  g_mutex_lock(&hub->lock);
  gboolean r = hub->token != NULL;
  g_mutex_unlock(&hub->lock);
  return r;
}

const char *
wh_hub_get_endpoint(wh_hub *hub)
{
  return hub->endpoint;
}

const char *
wh_hub_get_cache_dir(wh_hub *hub)
{
  return hub->cache_dir;
}

gboolean
wh_hub_is_offline(wh_hub *hub)
{
  return hub->offline;
}

const char *
wh_hub_get_user_agent(wh_hub *hub)
{
  return hub->user_agent;
}

/* --- validation -------------------------------------------------------------------------- */

static gboolean
repo_part_ok(const char *s, gsize len)
{
  if (len == 0 || len > 96 || s[0] == '.' || s[0] == '-')
    return FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = s[i];
    if (!(g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-'))
      return FALSE;
    if (c == '.' && i + 1 < len && s[i + 1] == '.')
      return FALSE;
  }
  return TRUE;
}

gboolean
wh_hub_validate_repo_id(const char *repo_id, GError **error)
{
  const char *slash = repo_id ? strchr(repo_id, '/') : NULL;
  if (!repo_id || !slash || strchr(slash + 1, '/') ||
      !repo_part_ok(repo_id, (gsize)(slash - repo_id)) ||
      !repo_part_ok(slash + 1, strlen(slash + 1))) {
    g_autofree char *shown = repo_id ? g_strescape(repo_id, NULL) : g_strdup("(null)");
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
                "'%s' is not a model id: write it as ORGANISATION/NAME using letters, digits, "
                "'.', '_' and '-' (for example ggml-org/gemma-3-1b-it-GGUF)",
                shown);
    return FALSE;
  }
  return TRUE;
}

gboolean
wh_hub_validate_filename(const char *filename, GError **error)
{
  const char *why = NULL;
  if (!filename || !*filename)
    why = "it is empty";
  else if (strlen(filename) >= 4096)
    why = "it is too long";
  else if (filename[0] == '/')
    why = "it is an absolute path";
  else if (strchr(filename, '\\'))
    why = "it contains a backslash";
  else {
    for (const char *c = filename; *c && !why; c++)
      if ((guchar)*c < 0x20 || *c == 0x7f)
        why = "it contains control characters";
    if (!why && !g_utf8_validate(filename, -1, NULL))
      why = "it is not valid UTF-8";
    if (!why) {
      g_auto(GStrv) parts = g_strsplit(filename, "/", -1);
      for (guint i = 0; parts[i] && !why; i++)
        if (!*parts[i] || strcmp(parts[i], ".") == 0 || strcmp(parts[i], "..") == 0)
          why = "it contains an empty, '.' or '..' component";
    }
  }
  if (why) {
    g_autofree char *shown = filename ? g_strescape(filename, NULL) : g_strdup("(null)");
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
                "refusing file name '%s': %s; a hub file name must be a relative path inside "
                "the repository",
                shown, why);
    return FALSE;
  }
  return TRUE;
}

gboolean
wh_hub_validate_revision(const char *revision, GError **error)
{
  gboolean ok = revision && *revision && strlen(revision) < 256 && revision[0] != '.' &&
                !strstr(revision, "..") && g_utf8_validate(revision, -1, NULL);
  for (const char *c = revision; ok && *c; c++)
    if ((guchar)*c <= 0x20 || *c == 0x7f || *c == '\\')
      ok = FALSE;
  if (!ok) {
    g_autofree char *shown = revision ? g_strescape(revision, NULL) : g_strdup("(null)");
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
                "'%s' is not a usable revision: give a branch, tag or commit id (e.g. main)",
                shown);
  }
  return ok;
}

gboolean
wh_hub_check_cancelled(GCancellable *cancellable, GError **error)
{
  if (cancellable && g_cancellable_is_cancelled(cancellable)) {
    g_set_error_literal(error, WH_HUB_ERROR, WH_HUB_ERROR_CANCELLED, "cancelled");
    return TRUE;
  }
  return FALSE;
}

/* --- HTTP -------------------------------------------------------------------------------- */

SoupSession *
wh_hub_session_new(wh_hub *hub)
{
  return soup_session_new_with_options("user-agent", hub->user_agent, "timeout", hub->timeout,
                                       "idle-timeout", 60, "max-conns-per-host", 16, "max-conns",
                                       64, NULL);
}

static gboolean
same_origin(GUri *a, GUri *b)
{
  return g_ascii_strcasecmp(g_uri_get_scheme(a), g_uri_get_scheme(b)) == 0 &&
         g_ascii_strcasecmp(g_uri_get_host(a) ? g_uri_get_host(a) : "",
                            g_uri_get_host(b) ? g_uri_get_host(b) : "") == 0 &&
         g_uri_get_port(a) == g_uri_get_port(b);
}

SoupMessage *
wh_hub_message_new(wh_hub *hub, const char *method, const char *url, GError **error)
{
  GUri *uri = g_uri_parse(url, SOUP_HTTP_URI_FLAGS, NULL);
  if (!uri || !g_uri_get_host(uri) ||
      (g_strcmp0(g_uri_get_scheme(uri), "http") && g_strcmp0(g_uri_get_scheme(uri), "https"))) {
    if (uri)
      g_uri_unref(uri);
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER, "the hub gave an unusable URL '%s'", url);
    return NULL;
  }
  SoupMessage *msg = soup_message_new_from_uri(method, uri);
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  if (same_origin(uri, hub->endpoint_uri)) {
    g_mutex_lock(&hub->lock);
    if (hub->token) {
      g_autofree char *auth = g_strdup_printf("Bearer %s", hub->token);
      soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
      memset(auth, 0, strlen(auth));
    }
    g_mutex_unlock(&hub->lock);
  }
  g_uri_unref(uri);
  return msg;
}

void
wh_hub_set_status_error(wh_hub *hub, SoupMessage *msg, const char *what, GError **error)
{
  guint st = soup_message_get_status(msg);
  switch (st) {
  case 401:
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_AUTH,
                "%s needs you to sign in (HTTP 401; or it does not exist): %s; if the name "
                "is right, create an access token on huggingface.co (Settings → Access "
                "Tokens) and set it in Preferences or in HF_TOKEN",
                what,
                wh_hub_has_token(hub) ? "the token you gave was not accepted" : "no token is set");
    break;
  case 403:
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_FORBIDDEN,
                "%s is gated or private and your account has no access (HTTP 403): open the "
                "model page on the hub and request access, then try again",
                what);
    break;
  case 404:
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NOT_FOUND,
                "%s was not found on %s (HTTP 404): check the spelling, the revision, or "
                "whether it was renamed",
                what, hub->endpoint);
    break;
  default:
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER,
                "the hub answered HTTP %u (%s) for %s; try again later", st,
                soup_message_get_reason_phrase(msg) ? soup_message_get_reason_phrase(msg) : "",
                what);
  }
}

gboolean
wh_hub_status_is_retriable(guint status)
{
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

gboolean
wh_hub_error_is_retriable(const GError *e)
{
  if (!e)
    return FALSE;
  if (e->domain == G_IO_ERROR)
    return e->code == G_IO_ERROR_TIMED_OUT || e->code == G_IO_ERROR_CONNECTION_CLOSED ||
           e->code == G_IO_ERROR_BROKEN_PIPE || e->code == G_IO_ERROR_CONNECTION_REFUSED ||
           e->code == G_IO_ERROR_HOST_UNREACHABLE || e->code == G_IO_ERROR_NETWORK_UNREACHABLE ||
           e->code == G_IO_ERROR_PARTIAL_INPUT || e->code == G_IO_ERROR_FAILED ||
           e->code == G_IO_ERROR_NOT_CONNECTED;
  if (e->domain == G_RESOLVER_ERROR)
    return e->code == G_RESOLVER_ERROR_TEMPORARY_FAILURE;
  if (e->domain == SOUP_SESSION_ERROR)
    return e->code == SOUP_SESSION_ERROR_PARSING || e->code == SOUP_SESSION_ERROR_ENCODING;
  if (e->domain == WH_HUB_ERROR)
    return e->code == WH_HUB_ERROR_NETWORK;
  return FALSE;
}

gboolean
wh_hub_set_tls_error(const GError *local, const char *url, GError **error)
{
  if (!local || local->domain != G_TLS_ERROR)
    return FALSE;
  g_autoptr(GUri) u = url ? g_uri_parse(url, G_URI_FLAGS_NONE, NULL) : NULL;
  const char *host = u && g_uri_get_host(u) ? g_uri_get_host(u) : "the server";
  if (local->code == G_TLS_ERROR_BAD_CERTIFICATE || local->code == G_TLS_ERROR_HANDSHAKE ||
      local->code == G_TLS_ERROR_CERTIFICATE_REQUIRED)
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_TLS,
                "TLS certificate not trusted: %s did not prove who it is (%s). Nothing was sent "
                "or saved. Check the date and time of this computer and the HF_ENDPOINT "
                "address; a private hub needs its certificate authority installed on this "
                "system",
                host, local->message);
  else
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_TLS,
                "the secure (TLS) connection to %s failed: %s. Nothing was sent or saved", host,
                local->message);
  return TRUE;
}

/* The Hugging Face hub answers 429 with the IETF RateLimit field instead of Retry-After:
 * `RateLimit: "api";r=0;t=42` (r: requests left, t: seconds until the window resets; one item
 * per policy, comma-separated). Returns the longest t of the exhausted items (all items when
 * none says r=0), or -1 when there is none. */
static double
ratelimit_reset_seconds(const char *value)
{
  if (!value)
    return -1;
  double any = -1, exhausted = -1;
  g_auto(GStrv) items = g_strsplit(value, ",", 16);
  for (guint i = 0; items[i]; i++) {
    g_auto(GStrv) params = g_strsplit(items[i], ";", 16);
    gint64 t = -1, r = -1;
    for (guint k = 0; params[k]; k++) {
      char *p = g_strstrip(params[k]);
      char *end = NULL;
      if ((p[0] == 't' || p[0] == 'r') && p[1] == '=') {
        gint64 v = g_ascii_strtoll(p + 2, &end, 10);
        if (end != p + 2 && *end == '\0' && v >= 0)
          *(p[0] == 't' ? &t : &r) = v;
      }
    }
    if (t < 0)
      continue;
    any = MAX(any, (double)t);
    if (r == 0)
      exhausted = MAX(exhausted, (double)t);
  }
  return exhausted >= 0 ? exhausted : any;
}

static double
retry_after_seconds(SoupMessage *msg)
{
  if (!msg)
    return -1;
  SoupMessageHeaders *h = soup_message_get_response_headers(msg);
  const char *ra = soup_message_headers_get_one(h, "Retry-After");
  if (!ra)
    return ratelimit_reset_seconds(soup_message_headers_get_one(h, "RateLimit"));
  char *end = NULL;
  gint64 v = g_ascii_strtoll(ra, &end, 10);
  if (end != ra && *end == '\0' && v >= 0)
    return (double)v;
  GDateTime *when = soup_date_time_new_from_http_string(ra);
  if (!when)
    return -1;
  GDateTime *now = g_date_time_new_now_utc();
  double d = g_date_time_difference(when, now) / 1e6;
  g_date_time_unref(when);
  g_date_time_unref(now);
  return d < 0 ? 0 : d;
}

gboolean
wh_hub_backoff(wh_hub *hub, guint attempt, SoupMessage *msg, GCancellable *cancellable)
{
  double wait = retry_after_seconds(msg);
  if (wait < 0) {
    wait = hub->retry_base * (double)(1u << MIN(attempt, 16u));
    wait *= 0.75 + 0.5 * g_random_double(); /* jitter: segments do not retry in lockstep */
  }
  wait = MIN(wait, hub->retry_max);
  gint64 until = g_get_monotonic_time() + (gint64)(wait * 1e6);
  while (g_get_monotonic_time() < until) {
    if (cancellable && g_cancellable_is_cancelled(cancellable))
      return FALSE;
    gint64 left = until - g_get_monotonic_time();
    g_usleep((gulong)CLAMP(left, 0, 50000));
  }
  return !(cancellable && g_cancellable_is_cancelled(cancellable));
}

char *
wh_hub_resolve_location(const char *base, const char *location, GError **error)
{
  GUri *b = g_uri_parse(base, SOUP_HTTP_URI_FLAGS, NULL);
  GUri *r = b ? g_uri_parse_relative(b, location, SOUP_HTTP_URI_FLAGS, NULL) : NULL;
  char *out = NULL;
  if (r &&
      (g_strcmp0(g_uri_get_scheme(r), "http") == 0 ||
       g_strcmp0(g_uri_get_scheme(r), "https") == 0) &&
      g_uri_get_host(r))
    out = g_uri_to_string(r);
  else {
    g_autofree char *shown = g_strescape(location, NULL);
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER,
                "the hub redirected to an unusable location '%s'", shown);
  }
  if (r)
    g_uri_unref(r);
  if (b)
    g_uri_unref(b);
  return out;
}

static gboolean
is_redirect(guint st)
{
  return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

/* Reads the whole body of @in, refusing more than @max bytes. */
static GBytes *
read_body(GInputStream *in, gsize max, gboolean truncate, GCancellable *cancellable, GError **error)
{
  GByteArray *buf = g_byte_array_new();
  guint8 chunk[16384];
  for (;;) {
    gssize n = g_input_stream_read(in, chunk, sizeof chunk, cancellable, error);
    if (n < 0) {
      g_byte_array_unref(buf);
      return NULL;
    }
    if (n == 0)
      break;
    if (buf->len + (gsize)n > max && truncate) {
      g_byte_array_append(buf, chunk, (guint)(max - buf->len));
      break;
    }
    if (buf->len + (gsize)n > max) {
      g_byte_array_unref(buf);
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                  "the hub's answer is larger than %" G_GSIZE_FORMAT " bytes; refusing it", max);
      return NULL;
    }
    g_byte_array_append(buf, chunk, (guint)n);
  }
  return g_byte_array_free_to_bytes(buf);
}

GBytes *
wh_hub_get(wh_hub *hub, SoupSession *session, const char *url_in, const char *what,
           gint64 range_start, gint64 range_end, gsize max_bytes, SoupMessage **out_msg,
           GCancellable *cancellable, GError **error)
{
  if (hub->offline) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_OFFLINE,
                "offline mode (HF_HUB_OFFLINE is set): not contacting %s", hub->endpoint);
    return NULL;
  }
  g_autofree char *url = g_strdup(url_in);
  guint redirects = 0, failures = 0;
  for (;;) {
    if (wh_hub_check_cancelled(cancellable, error))
      return NULL;
    g_autoptr(SoupMessage) msg = wh_hub_message_new(hub, "GET", url, error);
    if (!msg)
      return NULL;
    if (range_end >= 0)
      soup_message_headers_set_range(soup_message_get_request_headers(msg), range_start, range_end);
    g_autoptr(GError) local = NULL;
    g_autoptr(GInputStream) in = soup_session_send(session, msg, cancellable, &local);
    guint st = in ? soup_message_get_status(msg) : 0;
    if (in && is_redirect(st)) {
      const char *loc =
          soup_message_headers_get_one(soup_message_get_response_headers(msg), "Location");
      if (!loc || ++redirects > WH_HUB_MAX_REDIRECTS) {
        if (loc)
          g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER,
                      "too many redirects (more than %d) starting from %s: a redirect loop",
                      WH_HUB_MAX_REDIRECTS, url_in);
        else
          g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER,
                      "a redirect without a Location from %s", url_in);
        return NULL;
      }
      char *next = wh_hub_resolve_location(url, loc, error);
      if (!next)
        return NULL;
      g_free(url);
      url = next;
      continue;
    }
    GBytes *body = NULL;
    if (in && SOUP_STATUS_IS_SUCCESSFUL(st)) {
      body = read_body(in, max_bytes, range_end >= 0, cancellable, &local);
      if (body) {
        if (out_msg)
          *out_msg = g_object_ref(msg);
        return body;
      }
    }
    gboolean retry =
        in ? (local ? wh_hub_error_is_retriable(local) : wh_hub_status_is_retriable(st))
           : wh_hub_error_is_retriable(local);
    if (local && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_set_error_literal(error, WH_HUB_ERROR, WH_HUB_ERROR_CANCELLED, "cancelled");
      return NULL;
    }
    if (!retry || failures + 1 >= hub->max_retries) {
      if (local && local->domain == WH_HUB_ERROR)
        g_propagate_error(error, g_steal_pointer(&local));
      else if (wh_hub_set_tls_error(local, url, error))
        return NULL;
      else if (local)
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NETWORK, "cannot reach %s: %s%s",
                    hub->endpoint, local->message,
                    retry ? " (gave up after several retries; check your connection)" : "");
      else {
        g_autofree char *w = what ? NULL : g_strdup_printf("the request %s", url_in);
        wh_hub_set_status_error(hub, msg, what ? what : w, error);
      }
      return NULL;
    }
    if (!wh_hub_backoff(hub, failures++, st == 429 || st == 503 ? msg : NULL, cancellable)) {
      g_set_error_literal(error, WH_HUB_ERROR, WH_HUB_ERROR_CANCELLED, "cancelled");
      return NULL;
    }
  }
}

char *
wh_hub_parse_link_next(const char *link)
{
  if (!link)
    return NULL;
  /* Link: <url1>; rel="next", <url2>; rel="last" */
  const char *p = link;
  while ((p = strchr(p, '<'))) {
    const char *end = strchr(p, '>');
    if (!end)
      return NULL;
    const char *params = end + 1;
    const char *stop = strchr(params, '<');
    g_autofree char *ps = stop ? g_strndup(params, (gsize)(stop - params)) : g_strdup(params);
    if (strstr(ps, "rel=\"next\"") || strstr(ps, "rel=next"))
      return g_strndup(p + 1, (gsize)(end - p - 1));
    p = end + 1;
  }
  return NULL;
}

JsonNode *
wh_hub_get_json(wh_hub *hub, SoupSession *session, const char *url, const char *what,
                char **link_next, GCancellable *cancellable, GError **error)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body =
      wh_hub_get(hub, session, url, what, 0, -1, WH_HUB_MAX_JSON, &msg, cancellable, error);
  if (!body)
    return NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  gsize len;
  const char *data = g_bytes_get_data(body, &len);
  g_autoptr(GError) local = NULL;
  if (len == 0 || !json_parser_load_from_data(parser, data, (gssize)len, &local) ||
      !json_parser_get_root(parser)) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                "the hub's answer to %s is not valid JSON (%s); the endpoint may not be a "
                "Hugging Face hub",
                url, local ? local->message : "empty body");
    return NULL;
  }
  if (link_next) {
    const char *link = soup_message_headers_get_one(soup_message_get_response_headers(msg), "Link");
    *link_next = wh_hub_parse_link_next(link);
  }
  return json_node_copy(json_parser_get_root(parser));
}

static char *
escape_path(const char *path)
{
  /* Escape each component but keep the slashes. */
  g_auto(GStrv) parts = g_strsplit(path, "/", -1);
  GString *s = g_string_new(NULL);
  for (guint i = 0; parts[i]; i++) {
    if (i)
      g_string_append_c(s, '/');
    g_autofree char *e = g_uri_escape_string(parts[i], NULL, FALSE);
    g_string_append(s, e);
  }
  return g_string_free(s, FALSE);
}

char *
wh_hub_resolve_url(wh_hub *hub, const char *repo_id, const char *revision, const char *filename)
{
  g_autofree char *r = g_uri_escape_string(revision, NULL, FALSE);
  g_autofree char *f = escape_path(filename);
  return g_strdup_printf("%s/%s/resolve/%s/%s", hub->endpoint, repo_id, r, f);
}

char *
wh_hub_normalize_etag(const char *etag)
{
  if (!etag)
    return NULL;
  if (g_str_has_prefix(etag, "W/"))
    etag += 2;
  gsize n = strlen(etag);
  if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
    return g_strndup(etag + 1, n - 2);
  return g_strdup(etag);
}

gboolean
wh_hub_is_sha256_hex(const char *s)
{
  if (!s || strlen(s) != 64)
    return FALSE;
  for (int i = 0; i < 64; i++)
    if (!g_ascii_isxdigit(s[i]))
      return FALSE;
  return TRUE;
}

/* --- JSON helpers ------------------------------------------------------------------------- */

static const char *
jstr(JsonObject *o, const char *key)
{
  JsonNode *n = o ? json_object_get_member(o, key) : NULL;
  if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
    return json_node_get_string(n);
  return NULL;
}

static gboolean
juint(JsonObject *o, const char *key, guint64 *out)
{
  JsonNode *n = o ? json_object_get_member(o, key) : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE(n))
    return FALSE;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) {
    gint64 v = json_node_get_int(n);
    if (v < 0)
      return FALSE;
    *out = (guint64)v;
    return TRUE;
  }
  if (t == G_TYPE_DOUBLE) {
    double v = json_node_get_double(n);
    if (!(v >= 0 && v < 1.8e19))
      return FALSE;
    *out = (guint64)v;
    return TRUE;
  }
  return FALSE;
}

static gboolean
jbool(JsonObject *o, const char *key)
{
  JsonNode *n = o ? json_object_get_member(o, key) : NULL;
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
         json_node_get_boolean(n);
}

static JsonObject *
jobj(JsonObject *o, const char *key)
{
  JsonNode *n = o ? json_object_get_member(o, key) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonArray *
jarr(JsonObject *o, const char *key)
{
  JsonNode *n = o ? json_object_get_member(o, key) : NULL;
  return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

/* "gated": false | "auto" | "manual" (| true in old answers). */
static char *
jgated(JsonObject *o)
{
  JsonNode *n = o ? json_object_get_member(o, "gated") : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE(n))
    return NULL;
  if (json_node_get_value_type(n) == G_TYPE_STRING)
    return g_strdup(json_node_get_string(n));
  if (json_node_get_value_type(n) == G_TYPE_BOOLEAN && json_node_get_boolean(n))
    return g_strdup("manual");
  return NULL;
}

static char **
jtags(JsonObject *o)
{
  JsonArray *a = jarr(o, "tags");
  GPtrArray *out = g_ptr_array_new();
  guint n = a ? json_array_get_length(a) : 0;
  for (guint i = 0; i < n; i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING)
      g_ptr_array_add(out, g_strdup(json_node_get_string(e)));
  }
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

/* --- search ------------------------------------------------------------------------------- */

static void
model_summary_free(wh_hub_model_summary *m)
{
  if (!m)
    return;
  g_free(m->id);
  g_free(m->author);
  g_free(m->pipeline_tag);
  g_free(m->library_name);
  g_free(m->last_modified);
  g_strfreev(m->tags);
  g_free(m->gated);
  g_free(m);
}

void
wh_hub_search_result_free(wh_hub_search_result *r)
{
  if (!r)
    return;
  g_ptr_array_unref(r->models);
  g_free(r->next_url);
  g_free(r);
}

static wh_hub_search_result *
parse_search(JsonNode *root, char *next, const char *url, GError **error)
{
  if (!JSON_NODE_HOLDS_ARRAY(root)) {
    g_free(next);
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                "the search answer from %s is not a JSON array of models", url);
    return NULL;
  }
  wh_hub_search_result *r = g_new0(wh_hub_search_result, 1);
  r->models = g_ptr_array_new_with_free_func((GDestroyNotify)model_summary_free);
  r->next_url = next;
  JsonArray *a = json_node_get_array(root);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(e))
      continue;
    JsonObject *o = json_node_get_object(e);
    const char *id = jstr(o, "id") ? jstr(o, "id") : jstr(o, "modelId");
    if (!id || !wh_hub_validate_repo_id(id, NULL))
      continue; /* skip entries we could never open */
    wh_hub_model_summary *m = g_new0(wh_hub_model_summary, 1);
    m->id = g_strdup(id);
    m->author = g_strdup(jstr(o, "author"));
    if (!m->author)
      m->author = g_strndup(id, (gsize)(strchr(id, '/') - id));
    m->pipeline_tag = g_strdup(jstr(o, "pipeline_tag"));
    m->library_name = g_strdup(jstr(o, "library_name"));
    m->last_modified = g_strdup(jstr(o, "lastModified"));
    m->tags = jtags(o);
    juint(o, "downloads", &m->downloads);
    juint(o, "likes", &m->likes);
    m->gated = jgated(o);
    m->is_private = jbool(o, "private");
    g_ptr_array_add(r->models, m);
  }
  return r;
}

static wh_hub_search_result *
search_url(wh_hub *hub, const char *url, GCancellable *cancellable, GError **error)
{
  g_autoptr(SoupSession) session = wh_hub_session_new(hub);
  char *next = NULL;
  g_autoptr(JsonNode) root =
      wh_hub_get_json(hub, session, url, "the model search", &next, cancellable, error);
  if (!root)
    return NULL;
  if (next) {
    /* A next page on another host is not followed (it would receive our token). */
    g_autoptr(GUri) u = g_uri_parse(next, SOUP_HTTP_URI_FLAGS, NULL);
    if (!u || !same_origin(u, hub->endpoint_uri))
      g_clear_pointer(&next, g_free);
  }
  return parse_search(root, next, url, error);
}

static void
add_param(GString *s, const char *key, const char *value)
{
  if (!value || !*value)
    return;
  g_autofree char *e = g_uri_escape_string(value, NULL, FALSE);
  g_string_append_printf(s, "%c%s=%s", strchr(s->str, '?') ? '&' : '?', key, e);
}

gboolean
wh_hub_parse_param_count(const char *text, guint64 *out, GError **error)
{
  const char *t = text ? text : "";
  while (g_ascii_isspace(*t))
    t++;
  gsize n = strlen(t);
  while (n > 0 && g_ascii_isspace(t[n - 1]))
    n--;
  double mult = 1;
  if (n > 0) {
    switch (g_ascii_toupper(t[n - 1])) {
    case 'K':
      mult = 1e3;
      break;
    case 'M':
      mult = 1e6;
      break;
    case 'B':
      mult = 1e9;
      break;
    case 'T':
      mult = 1e12;
      break;
    default:
      break;
    }
  }
  g_autofree char *num = g_strndup(t, mult > 1 ? n - 1 : n);
  gboolean ok = *num != '\0';
  for (const char *c = num; ok && *c; c++)
    ok = g_ascii_isdigit(*c) || (*c == '.' && mult > 1);
  double v = ok ? g_ascii_strtod(num, NULL) * mult : -1;
  if (!ok || v < 0 || v > 1e15) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
                "'%s' is not a parameter count; write it like 7B, 1.5B, 500M or 260K",
                text ? text : "");
    return FALSE;
  }
  *out = (guint64)(v + 0.5);
  return TRUE;
}

char *
wh_hub_format_param_count(guint64 n)
{
  static const struct {
    guint64 unit;
    char suffix;
  } units[] = {
      {G_GUINT64_CONSTANT(1000000000000), 'T'}, {1000000000, 'B'}, {1000000, 'M'}, {1000, 'K'}};
  for (guint i = 0; i < G_N_ELEMENTS(units); i++)
    if (n >= units[i].unit && n % units[i].unit == 0)
      return g_strdup_printf("%" G_GUINT64_FORMAT "%c", n / units[i].unit, units[i].suffix);
  return g_strdup_printf("%" G_GUINT64_FORMAT, n);
}

wh_hub_search_result *
wh_hub_search(wh_hub *hub, const wh_hub_search_query *q, GCancellable *cancellable, GError **error)
{
  GString *url = g_string_new(hub->endpoint);
  g_string_append(url, "/api/models");
  add_param(url, "search", q->search);
  add_param(url, "author", q->author);
  if (q->filter) {
    g_auto(GStrv) f = g_strsplit(q->filter, ",", -1);
    for (guint i = 0; f[i]; i++)
      add_param(url, "filter", g_strstrip(f[i]));
  }
  add_param(url, "pipeline_tag", q->pipeline_tag);
  add_param(url, "sort", q->sort);
  if (q->sort) {
    add_param(url, "direction", q->direction > 0 ? "1" : "-1");
  }
  g_autofree char *limit = g_strdup_printf("%u", q->limit ? MIN(q->limit, 1000u) : 20u);
  add_param(url, "limit", limit);
  if (q->full)
    add_param(url, "full", "true");
  if (q->min_params || q->max_params) {
    /* The hub's own range syntax (as on huggingface.co/models): min:0,max:24B. */
    g_autofree char *lo = wh_hub_format_param_count(q->min_params);
    g_autofree char *hi = q->max_params ? wh_hub_format_param_count(q->max_params) : NULL;
    g_autofree char *range =
        hi ? g_strdup_printf("min:%s,max:%s", lo, hi) : g_strdup_printf("min:%s", lo);
    add_param(url, "num_parameters", range);
  }
  g_autofree char *u = g_string_free(url, FALSE);
  return search_url(hub, u, cancellable, error);
}

wh_hub_search_result *
wh_hub_search_next(wh_hub *hub, const char *next_url, GCancellable *cancellable, GError **error)
{
  g_autoptr(GUri) u = next_url ? g_uri_parse(next_url, SOUP_HTTP_URI_FLAGS, NULL) : NULL;
  if (!u || !same_origin(u, hub->endpoint_uri)) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
                "the next-page URL is not on the hub endpoint %s", hub->endpoint);
    return NULL;
  }
  return search_url(hub, next_url, cancellable, error);
}

/* --- files: classification and grouping --------------------------------------------------- */

void
wh_hub_file_free(wh_hub_file *f)
{
  if (!f)
    return;
  g_free(f->path);
  g_free(f->sha256);
  g_free(f->blob_id);
  g_free(f->quant);
  g_free(f);
}

static gboolean
is_quant_token(const char *t)
{
  /* Q4_0, Q4_K_M, Q8_K_XL, IQ2_XXS, Q4_0_4_4, F16, BF16, F32, F64, TQ1_0, MXFP4, MXFP4_MOE */
  static GRegex *re;
  if (g_once_init_enter(&re)) {
    GRegex *r = g_regex_new("^(I?Q[0-9]+(_[A-Z0-9]+)*|B?F16|F32|F64|TQ[0-9]_[0-9]|"
                            "MXFP4(_MOE)?)$",
                            G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
    g_once_init_leave(&re, r);
  }
  return g_regex_match(re, t, 0, NULL);
}

char *
wh_hub_parse_quant_label(const char *filename)
{
  const char *base = strrchr(filename, '/');
  base = base ? base + 1 : filename;
  g_autofree char *stem = g_strdup(base);
  gsize n = strlen(stem);
  if (n > 5 && g_ascii_strcasecmp(stem + n - 5, ".gguf") == 0)
    stem[n - 5] = '\0';
  g_autofree char *prefix = NULL;
  guint idx, count;
  g_autofree char *with_ext = g_strconcat(stem, ".gguf", NULL);
  if (wh_gguf_split_parse(with_ext, &prefix, &idx, &count)) {
    g_free(stem);
    stem = g_steal_pointer(&prefix);
  }
  g_auto(GStrv) tok = g_strsplit_set(stem, "-.", -1);
  guint nt = g_strv_length(tok);
  for (guint i = nt; i-- > 0;) {
    if (*tok[i] && is_quant_token(tok[i])) {
      char *label = g_ascii_strup(tok[i], -1);
      if (i > 0 && g_ascii_strcasecmp(tok[i - 1], "UD") == 0) {
        char *ud = g_strconcat("UD-", label, NULL);
        g_free(label);
        label = ud;
      }
      return label;
    }
  }
  return NULL;
}

void
wh_hub_file_classify(wh_hub_file *f)
{
  const char *base = strrchr(f->path, '/');
  base = base ? base + 1 : f->path;
  gsize n = strlen(base);
  f->is_gguf = n > 5 && g_ascii_strcasecmp(base + n - 5, ".gguf") == 0;
  g_autofree char *lower = g_ascii_strdown(base, -1);
  f->is_mmproj = f->is_gguf && strstr(lower, "mmproj") != NULL;
  g_clear_pointer(&f->quant, g_free);
  f->split_index = f->split_count = 0;
  if (!f->is_gguf)
    return;
  f->quant = wh_hub_parse_quant_label(f->path);
  g_autofree char *prefix = NULL;
  guint idx, count;
  if (wh_gguf_split_parse(f->path, &prefix, &idx, &count) && count > 1) {
    f->split_index = idx + 1;
    f->split_count = count;
  }
}

void
wh_hub_gguf_group_free(wh_hub_gguf_group *g)
{
  if (!g)
    return;
  g_free(g->name);
  g_free(g->quant);
  g_ptr_array_unref(g->files);
  g_ptr_array_unref(g->mmproj);
  g_free(g);
}

static char *
dirname_of(const char *path)
{
  const char *s = strrchr(path, '/');
  return s ? g_strndup(path, (gsize)(s - path)) : g_strdup("");
}

static int
cmp_file_split(gconstpointer a, gconstpointer b)
{
  const wh_hub_file *x = *(wh_hub_file *const *)a, *y = *(wh_hub_file *const *)b;
  return (int)x->split_index - (int)y->split_index;
}

static int
cmp_group(gconstpointer a, gconstpointer b)
{
  const wh_hub_gguf_group *x = *(wh_hub_gguf_group *const *)a;
  const wh_hub_gguf_group *y = *(wh_hub_gguf_group *const *)b;
  return strcmp(x->name, y->name);
}

GPtrArray *
wh_hub_group_gguf_files(GPtrArray *files)
{
  GPtrArray *groups = g_ptr_array_new_with_free_func((GDestroyNotify)wh_hub_gguf_group_free);
  g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GHashTable) dirs_with_models =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  /* Pass 1: model files (projectors too when their folder has no model). */
  for (int pass = 0; pass < 2; pass++) {
    for (guint i = 0; i < files->len; i++) {
      wh_hub_file *f = files->pdata[i];
      if (!f->is_gguf)
        continue;
      g_autofree char *dir = dirname_of(f->path);
      if (pass == 0 && f->is_mmproj)
        continue;
      if (pass == 1 && (!f->is_mmproj || g_hash_table_contains(dirs_with_models, dir)))
        continue;
      char *name;
      g_autofree char *prefix = NULL;
      guint idx, count;
      if (f->split_count && wh_gguf_split_parse(f->path, &prefix, &idx, &count))
        name = g_strconcat(prefix, ".gguf", NULL);
      else
        name = g_strdup(f->path);
      wh_hub_gguf_group *g = g_hash_table_lookup(by_name, name);
      if (!g) {
        g = g_new0(wh_hub_gguf_group, 1);
        g->name = name;
        g->quant = g_strdup(f->quant);
        g->files = g_ptr_array_new();
        g->mmproj = g_ptr_array_new();
        g_hash_table_insert(by_name, g->name, g);
        g_ptr_array_add(groups, g);
      } else {
        g_free(name);
      }
      g_ptr_array_add(g->files, f);
      g->total_size += f->size;
      if (pass == 0)
        g_hash_table_add(dirs_with_models, g_steal_pointer(&dir));
    }
  }
  /* Projectors join every model group of their folder. */
  for (guint gi = 0; gi < groups->len; gi++) {
    wh_hub_gguf_group *g = groups->pdata[gi];
    g_ptr_array_sort(g->files, cmp_file_split);
    wh_hub_file *first = g->files->pdata[0];
    g->complete = first->split_count == 0 || g->files->len == first->split_count;
    for (guint k = 0; k < g->files->len && g->complete; k++)
      if (((wh_hub_file *)g->files->pdata[k])->split_index != (first->split_count ? k + 1 : 0))
        g->complete = FALSE;
    if (first->is_mmproj)
      continue;
    g_autofree char *gdir = dirname_of(first->path);
    for (guint i = 0; i < files->len; i++) {
      wh_hub_file *f = files->pdata[i];
      if (!f->is_mmproj)
        continue;
      g_autofree char *fdir = dirname_of(f->path);
      if (strcmp(fdir, gdir) == 0)
        g_ptr_array_add(g->mmproj, f);
    }
  }
  g_ptr_array_sort(groups, cmp_group);
  return groups;
}

wh_hub_gguf_group *
wh_hub_find_quant(GPtrArray *groups, const char *quant)
{
  wh_hub_gguf_group *best = NULL;
  for (guint i = 0; i < groups->len; i++) {
    wh_hub_gguf_group *g = groups->pdata[i];
    if (!g->quant || g_ascii_strcasecmp(g->quant, quant) != 0)
      continue;
    if (g->files->len && ((wh_hub_file *)g->files->pdata[0])->is_mmproj)
      continue;
    if (!best || strlen(g->name) < strlen(best->name))
      best = g;
  }
  return best;
}

/* --- model info and tree ------------------------------------------------------------------- */

void
wh_hub_model_info_free(wh_hub_model_info *info)
{
  if (!info)
    return;
  g_free(info->id);
  g_free(info->sha);
  g_free(info->gated);
  g_free(info->pipeline_tag);
  g_free(info->library_name);
  g_free(info->last_modified);
  g_strfreev(info->tags);
  g_free(info->gguf.architecture);
  g_free(info->gguf.chat_template);
  if (info->files)
    g_ptr_array_unref(info->files);
  g_free(info);
}

/* A file entry: siblings use rfilename, the tree uses path + type. LFS object: {sha256|oid,
 * size}. Returns NULL (and counts it) when the name is unsafe. */
static wh_hub_file *
parse_file(JsonObject *o, const char *name_key)
{
  const char *path = jstr(o, name_key);
  if (!path || !wh_hub_validate_filename(path, NULL))
    return NULL;
  wh_hub_file *f = g_new0(wh_hub_file, 1);
  f->path = g_strdup(path);
  juint(o, "size", &f->size);
  f->blob_id = g_strdup(jstr(o, "blobId") ? jstr(o, "blobId") : jstr(o, "oid"));
  JsonObject *lfs = jobj(o, "lfs");
  if (lfs) {
    const char *sha = jstr(lfs, "sha256") ? jstr(lfs, "sha256") : jstr(lfs, "oid");
    if (wh_hub_is_sha256_hex(sha))
      f->sha256 = g_ascii_strdown(sha, -1);
    guint64 sz;
    if (juint(lfs, "size", &sz))
      f->size = sz;
  }
  wh_hub_file_classify(f);
  return f;
}

static wh_hub_model_info *model_info_from_json(JsonNode *root, const char *repo_id, GError **error);

wh_hub_model_info *
wh_hub_model_info_get(wh_hub *hub, const char *repo_id, const char *revision,
                      GCancellable *cancellable, GError **error)
{
  if (!wh_hub_validate_repo_id(repo_id, error) ||
      (revision && !wh_hub_validate_revision(revision, error)))
    return NULL;
  g_autofree char *rev = revision ? g_uri_escape_string(revision, NULL, FALSE) : NULL;
  g_autofree char *url =
      rev ? g_strdup_printf("%s/api/models/%s/revision/%s?blobs=true", hub->endpoint, repo_id, rev)
          : g_strdup_printf("%s/api/models/%s?blobs=true", hub->endpoint, repo_id);
  g_autoptr(SoupSession) session = wh_hub_session_new(hub);
  g_autofree char *what = g_strdup_printf("model %s", repo_id);
  g_autoptr(JsonNode) root = wh_hub_get_json(hub, session, url, what, NULL, cancellable, error);
  if (!root)
    return NULL;
  return model_info_from_json(root, repo_id, error);
}

static wh_hub_model_info *
model_info_from_json(JsonNode *root, const char *repo_id, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                "the model info for %s is not a JSON object", repo_id);
    return NULL;
  }
  JsonObject *o = json_node_get_object(root);
  wh_hub_model_info *info = g_new0(wh_hub_model_info, 1);
  info->id = g_strdup(jstr(o, "id") ? jstr(o, "id") : repo_id);
  info->sha = g_strdup(jstr(o, "sha"));
  info->gated = jgated(o);
  info->is_private = jbool(o, "private");
  info->disabled = jbool(o, "disabled");
  juint(o, "downloads", &info->downloads);
  juint(o, "likes", &info->likes);
  info->pipeline_tag = g_strdup(jstr(o, "pipeline_tag"));
  info->library_name = g_strdup(jstr(o, "library_name"));
  info->last_modified = g_strdup(jstr(o, "lastModified"));
  info->tags = jtags(o);
  JsonObject *gg = jobj(o, "gguf");
  if (gg) {
    juint(gg, "total", &info->gguf.total);
    juint(gg, "context_length", &info->gguf.context_length);
    info->gguf.architecture = g_strdup(jstr(gg, "architecture"));
    info->gguf.chat_template = g_strdup(jstr(gg, "chat_template"));
  }
  info->files = g_ptr_array_new_with_free_func((GDestroyNotify)wh_hub_file_free);
  JsonArray *sib = jarr(o, "siblings");
  for (guint i = 0; sib && i < json_array_get_length(sib); i++) {
    JsonNode *e = json_array_get_element(sib, i);
    wh_hub_file *f =
        JSON_NODE_HOLDS_OBJECT(e) ? parse_file(json_node_get_object(e), "rfilename") : NULL;
    if (f)
      g_ptr_array_add(info->files, f);
    else
      info->n_rejected++;
  }
  return info;
}

/* Appends the files of one tree page to @files. */
static gboolean
tree_page_from_json(JsonNode *root, const char *repo_id, GPtrArray *files, GError **error)
{
  if (!JSON_NODE_HOLDS_ARRAY(root)) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                "the file list of %s is not a JSON array", repo_id);
    return FALSE;
  }
  JsonArray *a = json_node_get_array(root);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(e))
      continue;
    JsonObject *o = json_node_get_object(e);
    if (g_strcmp0(jstr(o, "type"), "directory") == 0)
      continue;
    wh_hub_file *f = parse_file(o, "path");
    if (!f) {
      g_autofree char *shown = jstr(o, "path") ? g_strescape(jstr(o, "path"), NULL) : NULL;
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                  "the file list of %s holds an unsafe file name '%s'; refusing it", repo_id,
                  shown ? shown : "(missing)");
      return FALSE;
    }
    g_ptr_array_add(files, f);
  }
  return TRUE;
}

static JsonNode *
parse_json_bytes(const char *data, gsize len, const char *what, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) local = NULL;
  if (len == 0 || len > WH_HUB_MAX_JSON ||
      !json_parser_load_from_data(parser, data, (gssize)len, &local)) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL, "%s is not valid JSON (%s)", what,
                local ? local->message
                : len ? "too large"
                      : "empty");
    return NULL;
  }
  if (!json_parser_get_root(parser)) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL, "%s is empty", what);
    return NULL;
  }
  return json_node_copy(json_parser_get_root(parser));
}

wh_hub_model_info *
wh_hub_model_info_parse(const char *data, gsize len, const char *repo_id, GError **error)
{
  g_autoptr(JsonNode) root = parse_json_bytes(data, len, "the model info", error);
  return root ? model_info_from_json(root, repo_id, error) : NULL;
}

GPtrArray *
wh_hub_tree_parse(const char *data, gsize len, const char *repo_id, GError **error)
{
  g_autoptr(JsonNode) root = parse_json_bytes(data, len, "the file list", error);
  if (!root)
    return NULL;
  GPtrArray *files = g_ptr_array_new_with_free_func((GDestroyNotify)wh_hub_file_free);
  if (!tree_page_from_json(root, repo_id, files, error)) {
    g_ptr_array_unref(files);
    return NULL;
  }
  return files;
}

wh_hub_search_result *
wh_hub_search_result_parse(const char *data, gsize len, GError **error)
{
  g_autoptr(JsonNode) root = parse_json_bytes(data, len, "the search answer", error);
  return root ? parse_search(root, NULL, "the search answer", error) : NULL;
}

GPtrArray *
wh_hub_list_files(wh_hub *hub, const char *repo_id, const char *revision, GCancellable *cancellable,
                  GError **error)
{
  if (!revision)
    revision = "main";
  if (!wh_hub_validate_repo_id(repo_id, error) || !wh_hub_validate_revision(revision, error))
    return NULL;
  g_autofree char *rev = g_uri_escape_string(revision, NULL, FALSE);
  char *url =
      g_strdup_printf("%s/api/models/%s/tree/%s?recursive=true", hub->endpoint, repo_id, rev);
  g_autoptr(SoupSession) session = wh_hub_session_new(hub);
  g_autofree char *what = g_strdup_printf("revision %s of model %s", revision, repo_id);
  GPtrArray *files = g_ptr_array_new_with_free_func((GDestroyNotify)wh_hub_file_free);
  guint pages = 0;
  while (url) {
    char *next = NULL;
    g_autoptr(JsonNode) root = wh_hub_get_json(hub, session, url, what, &next, cancellable, error);
    g_free(url);
    url = NULL;
    if (!root) {
      g_ptr_array_unref(files);
      return NULL;
    }
    if (!tree_page_from_json(root, repo_id, files, error)) {
      g_free(next);
      g_ptr_array_unref(files);
      return NULL;
    }
    if (next) {
      g_autoptr(GUri) u = g_uri_parse(next, SOUP_HTTP_URI_FLAGS, NULL);
      if (!u || !same_origin(u, hub->endpoint_uri) || ++pages > 1000)
        g_clear_pointer(&next, g_free);
    }
    url = next;
  }
  return files;
}

/* --- the cache ----------------------------------------------------------------------------- */

char *
wh_hub_repo_folder_name(const char *repo_id)
{
  g_auto(GStrv) parts = g_strsplit(repo_id, "/", -1);
  g_autofree char *joined = g_strjoinv("--", parts);
  return g_strconcat("models--", joined, NULL);
}

void
wh_hub_cached_file_free(wh_hub_cached_file *f)
{
  if (!f)
    return;
  g_free(f->repo_id);
  g_free(f->commit);
  g_free(f->filename);
  g_free(f->path);
  g_free(f->blob_path);
  if (f->refs)
    g_ptr_array_unref(f->refs);
  g_free(f);
}

static void
walk_snapshot(const char *repo_id, const char *commit, const char *root, const char *rel,
              GPtrArray *refs, GPtrArray *out, guint depth)
{
  g_autofree char *dirpath = rel ? g_build_filename(root, rel, NULL) : g_strdup(root);
  GDir *d = g_dir_open(dirpath, 0, NULL);
  if (!d || depth > 32) {
    if (d)
      g_dir_close(d);
    return;
  }
  const char *name;
  while ((name = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(dirpath, name, NULL);
    g_autofree char *r = rel ? g_build_filename(rel, name, NULL) : g_strdup(name);
    struct stat st, lst;
    if (stat(p, &st) != 0 || lstat(p, &lst) != 0) {
      continue; /* dangling link: not a complete file */
    }
    if (S_ISDIR(st.st_mode)) {
      /* Snapshots hold real folders and links to files only: a link to a folder (never made
       * by any hub client) is not followed, so a link loop cannot make the walk explode. */
      if (!S_ISLNK(lst.st_mode))
        walk_snapshot(repo_id, commit, root, r, refs, out, depth + 1);
      continue;
    }
    if (!S_ISREG(st.st_mode))
      continue;
    wh_hub_cached_file *f = g_new0(wh_hub_cached_file, 1);
    f->repo_id = g_strdup(repo_id);
    f->commit = g_strdup(commit);
    f->filename = g_steal_pointer(&r);
    f->path = g_strdup(p);
    char *real = realpath(p, NULL);
    f->blob_path = real ? g_strdup(real) : NULL;
    free(real);
    f->size = (guint64)st.st_size;
    f->refs = g_ptr_array_ref(refs);
    g_ptr_array_add(out, f);
  }
  g_dir_close(d);
}

static int
cmp_cached(gconstpointer a, gconstpointer b)
{
  const wh_hub_cached_file *x = *(wh_hub_cached_file *const *)a;
  const wh_hub_cached_file *y = *(wh_hub_cached_file *const *)b;
  int c = strcmp(x->repo_id, y->repo_id);
  if (!c)
    c = strcmp(x->commit, y->commit);
  return c ? c : strcmp(x->filename, y->filename);
}

GPtrArray *
wh_hub_cache_list(wh_hub *hub, const char *cache_dir, GError **error)
{
  const char *dir = cache_dir ? cache_dir : hub->cache_dir;
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)wh_hub_cached_file_free);
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return out;
  const char *name;
  while ((name = g_dir_read_name(d))) {
    if (!g_str_has_prefix(name, "models--"))
      continue;
    /* models--org--name → org/name (names may hold '-' but not "--"). */
    g_auto(GStrv) parts = g_strsplit(name + 8, "--", -1);
    g_autofree char *repo_id = g_strjoinv("/", parts);
    g_autofree char *snaps = g_build_filename(dir, name, "snapshots", NULL);
    g_autofree char *refsdir = g_build_filename(dir, name, "refs", NULL);
    GDir *sd = g_dir_open(snaps, 0, NULL);
    if (!sd)
      continue;
    const char *commit;
    while ((commit = g_dir_read_name(sd))) {
      g_autoptr(GPtrArray) refs = g_ptr_array_new_with_free_func(g_free);
      GDir *rd = g_dir_open(refsdir, 0, NULL);
      const char *ref;
      while (rd && (ref = g_dir_read_name(rd))) {
        g_autofree char *rp = g_build_filename(refsdir, ref, NULL);
        g_autofree char *c = NULL;
        if (g_file_get_contents(rp, &c, NULL, NULL) && strcmp(g_strstrip(c), commit) == 0)
          g_ptr_array_add(refs, g_strdup(ref));
      }
      if (rd)
        g_dir_close(rd);
      g_autofree char *root = g_build_filename(snaps, commit, NULL);
      walk_snapshot(repo_id, commit, root, NULL, refs, out, 0);
    }
    g_dir_close(sd);
  }
  g_dir_close(d);
  g_ptr_array_sort(out, cmp_cached);
  (void)error;
  return out;
}

char *
wh_hub_format_size(guint64 b)
{
  if (b >= G_GUINT64_CONSTANT(1000000000))
    return g_strdup_printf("%.2f GB", b / 1e9);
  if (b >= 1000000)
    return g_strdup_printf("%.1f MB", b / 1e6);
  if (b >= 1000)
    return g_strdup_printf("%.1f kB", b / 1e3);
  return g_strdup_printf("%" G_GUINT64_FORMAT " B", b);
}

/* --- jobs ------------------------------------------------------------------------------------ */

typedef struct {
  wh_hub *hub;
  char *repo_id, *revision, *filename;
  wh_hub_search_query query;
  char *q_search, *q_author, *q_filter, *q_pipeline, *q_sort;
  wh_hub_download_params dl;
  char *dl_sha;
} job_args;

static void
job_args_free(job_args *a)
{
  g_free(a->repo_id);
  g_free(a->revision);
  g_free(a->filename);
  g_free(a->q_search);
  g_free(a->q_author);
  g_free(a->q_filter);
  g_free(a->q_pipeline);
  g_free(a->q_sort);
  g_free(a->dl_sha);
  g_free(a);
}

static job_args *
job_args_new(wh_hub *hub, const char *repo_id, const char *revision, const char *filename)
{
  job_args *a = g_new0(job_args, 1);
  a->hub = hub;
  a->repo_id = g_strdup(repo_id);
  a->revision = g_strdup(revision);
  a->filename = g_strdup(filename);
  return a;
}

static gboolean
job_search(wh_job *job, gpointer data, GError **error)
{
  job_args *a = data;
  wh_hub_search_result *r = wh_hub_search(a->hub, &a->query, wh_job_get_cancellable(job), error);
  if (r)
    wh_job_set_result(job, r, (GDestroyNotify)wh_hub_search_result_free);
  return r != NULL;
}

wh_job *
wh_hub_search_async(wh_hub *hub, wh_job_queue *queue, const wh_hub_search_query *query,
                    wh_job_notify_func notify, gpointer notify_data)
{
  job_args *a = job_args_new(hub, NULL, NULL, NULL);
  a->query = *query;
  a->query.search = a->q_search = g_strdup(query->search);
  a->query.author = a->q_author = g_strdup(query->author);
  a->query.filter = a->q_filter = g_strdup(query->filter);
  a->query.pipeline_tag = a->q_pipeline = g_strdup(query->pipeline_tag);
  a->query.sort = a->q_sort = g_strdup(query->sort);
  g_autofree char *title =
      g_strdup_printf("Searching for “%s”", query->search ? query->search : "models");
  return wh_job_queue_submit(queue, WH_JOB_DOWNLOAD, title, job_search, a,
                             (GDestroyNotify)job_args_free, notify, notify_data);
}

static gboolean
job_info(wh_job *job, gpointer data, GError **error)
{
  job_args *a = data;
  wh_hub_model_info *r =
      wh_hub_model_info_get(a->hub, a->repo_id, a->revision, wh_job_get_cancellable(job), error);
  if (r)
    wh_job_set_result(job, r, (GDestroyNotify)wh_hub_model_info_free);
  return r != NULL;
}

wh_job *
wh_hub_model_info_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id, const char *revision,
                        wh_job_notify_func notify, gpointer notify_data)
{
  g_autofree char *title = g_strdup_printf("Reading %s", repo_id);
  return wh_job_queue_submit(queue, WH_JOB_DOWNLOAD, title, job_info,
                             job_args_new(hub, repo_id, revision, NULL),
                             (GDestroyNotify)job_args_free, notify, notify_data);
}

static gboolean
job_files(wh_job *job, gpointer data, GError **error)
{
  job_args *a = data;
  GPtrArray *r =
      wh_hub_list_files(a->hub, a->repo_id, a->revision, wh_job_get_cancellable(job), error);
  if (r)
    wh_job_set_result(job, r, (GDestroyNotify)g_ptr_array_unref);
  return r != NULL;
}

wh_job *
wh_hub_list_files_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id, const char *revision,
                        wh_job_notify_func notify, gpointer notify_data)
{
  g_autofree char *title = g_strdup_printf("Listing the files of %s", repo_id);
  return wh_job_queue_submit(queue, WH_JOB_DOWNLOAD, title, job_files,
                             job_args_new(hub, repo_id, revision, NULL),
                             (GDestroyNotify)job_args_free, notify, notify_data);
}

static gboolean
job_header(wh_job *job, gpointer data, GError **error)
{
  job_args *a = data;
  wh_gguf *g = wh_hub_read_gguf_header(a->hub, a->repo_id, a->revision, a->filename, NULL,
                                       wh_job_get_cancellable(job), error);
  if (g)
    wh_job_set_result(job, g, (GDestroyNotify)wh_gguf_close);
  return g != NULL;
}

wh_job *
wh_hub_read_gguf_header_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id,
                              const char *revision, const char *filename, wh_job_notify_func notify,
                              gpointer notify_data)
{
  g_autofree char *title = g_strdup_printf("Reading the header of %s", filename);
  return wh_job_queue_submit(queue, WH_JOB_DOWNLOAD, title, job_header,
                             job_args_new(hub, repo_id, revision, filename),
                             (GDestroyNotify)job_args_free, notify, notify_data);
}

static void
job_download_progress(guint64 done, guint64 total, const char *status, gpointer data)
{
  wh_job_set_progress(data, done, total, status);
}

static gboolean
job_download(wh_job *job, gpointer data, GError **error)
{
  job_args *a = data;
  wh_hub_download_params p = a->dl;
  p.progress = job_download_progress;
  p.progress_data = job;
  wh_hub_download_result *r =
      wh_hub_download(a->hub, a->repo_id, a->filename, &p, wh_job_get_cancellable(job), error);
  if (r)
    wh_job_set_result(job, r, (GDestroyNotify)wh_hub_download_result_free);
  return r != NULL;
}

wh_job *
wh_hub_download_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id, const char *filename,
                      const wh_hub_download_params *params, wh_job_notify_func notify,
                      gpointer notify_data)
{
  job_args *a = job_args_new(hub, repo_id, params ? params->revision : NULL, filename);
  if (params)
    a->dl = *params;
  else
    wh_hub_download_default_params(&a->dl);
  a->dl.revision = a->revision;
  a->dl.expected_sha256 = a->dl_sha = g_strdup(params ? params->expected_sha256 : NULL);
  const char *base = strrchr(filename, '/');
  g_autofree char *title = g_strdup_printf("Downloading %s", base ? base + 1 : filename);
  return wh_job_queue_submit(queue, WH_JOB_DOWNLOAD, title, job_download, a,
                             (GDestroyNotify)job_args_free, notify, notify_data);
}
