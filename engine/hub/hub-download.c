/* hub-download.c — downloads into the Hugging Face cache that never lose a byte.
 *
 * Implementation notes
 * --------------------
 * 1. HEAD the resolve URL without following redirects: X-Repo-Commit, X-Linked-Etag (else
 *    ETag), X-Linked-Size (else Content-Length), and the Location of the CDN. A redirect
 *    that carries none of these (a renamed repository) is followed on the same host.
 * 2. blobs/<etag>.incomplete is the partial file; blobs/<etag>.incomplete.whittle is its
 *    state (key file: etag, size, repo, file, segments "start:end:done;..."). The state is
 *    written only after an fdatasync of the data it describes, atomically (write + fsync +
 *    rename), so after a crash or SIGKILL the state never claims bytes that are not on disk;
 *    at worst a second of transfer is repeated. An advisory lock (flock) on the partial file
 *    stops two processes from writing it at once.
 * 3. Segments: [start, end) ranges fetched by one thread each with "Range: bytes=pos-(end-1)"
 *    and written with pwrite. The calling thread is the coordinator: it reports progress,
 *    persists the state, and hashes the contiguous completed prefix of the file as it grows
 *    (reading back what the workers just wrote, from the page cache), so the sha256 is ready
 *    when the last byte lands. On resume the prefix is hashed again from disk (GChecksum
 *    state cannot be saved).
 * 4. A body is read only up to the bytes asked for (endless bodies are cut off); a body that
 *    ends early, a timeout, a 5xx or a 429 is retried with exponential backoff (Retry-After
 *    honoured) from the last byte written; after max_retries failures in a row without
 *    progress the download stops with the last reason (and resumes on the next call). A 200
 *    answer to a Range request (a server that ignores ranges) restarts the file from byte 0
 *    as one stream. An ETag in a CDN answer that differs from the expected one means the
 *    file changed upstream: the partial file is dropped and the download starts over.
 * 5. The end: sha256 (LFS files) or git blob sha1 (small files) checked against the etag or
 *    the oid given; on mismatch the partial file is dropped and the download runs again
 *    (twice at most). Then fsync, rename to blobs/<etag>, fsync of blobs/, a relative
 *    symlink snapshots/<commit>/<file> → ../../blobs/<etag>, and refs/<revision>.
 */
#include "config.h"

#include "hub-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CHUNK (256u << 10)
#define STATE_INTERVAL_US (1000 * 1000)
#define MIN_SEGMENT (1u << 20)
#define MAX_SEGMENTS 16
#define SPACE_CHECK_BYTES (64u << 20)

void
wh_hub_download_default_params(wh_hub_download_params *p)
{
  memset(p, 0, sizeof *p);
}

void
wh_hub_download_result_free(wh_hub_download_result *r)
{
  if (!r)
    return;
  g_free(r->path);
  g_free(r->blob_path);
  g_free(r->commit);
  g_free(r->etag);
  g_free(r->notice);
  g_free(r);
}

/* --- small helpers ----------------------------------------------------------------------- */

static gint64
free_space(wh_hub *hub, const char *dir)
{
  if (hub->free_space)
    return hub->free_space(dir, hub->free_space_data);
  struct statvfs sv;
  if (statvfs(dir, &sv) != 0)
    return -1;
  return (gint64)sv.f_bavail * (gint64)sv.f_frsize;
}

static void
set_no_space(GError **error, guint64 need, gint64 have, const char *dir)
{
  g_autofree char *n = wh_hub_format_size(need);
  g_autofree char *h = wh_hub_format_size(have > 0 ? (guint64)have : 0);
  g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NO_SPACE,
              "not enough disk space: need %s, have %s in %s; free some space (or point "
              "HF_HOME elsewhere) and run the download again: it continues where it stopped",
              n, h, dir);
}

static gboolean
safe_name(const char *s, gsize max)
{
  gsize n = s ? strlen(s) : 0;
  if (n == 0 || n > max || s[0] == '.')
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!(g_ascii_isalnum(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
      return FALSE;
  return strstr(s, "..") == NULL;
}

static gboolean
mkdir_p(const char *dir, GError **error)
{
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int e = errno;
    g_set_error(error, WH_HUB_ERROR, e == ENOSPC ? WH_HUB_ERROR_NO_SPACE : WH_HUB_ERROR_IO,
                "cannot create the folder %s: %s", dir, g_strerror(e));
    return FALSE;
  }
  return TRUE;
}

static void
fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* --- HEAD --------------------------------------------------------------------------------- */

typedef struct {
  char *commit, *etag, *url;
  guint64 size;
  gboolean has_size;
} head_info;

static void
head_info_clear(head_info *h)
{
  g_free(h->commit);
  g_free(h->etag);
  g_free(h->url);
  memset(h, 0, sizeof *h);
}

static gboolean
do_head(wh_hub *hub, SoupSession *session, const char *resolve_url, const char *what,
        head_info *out, GCancellable *cancellable, GError **error)
{
  g_autofree char *url = g_strdup(resolve_url);
  guint redirects = 0, failures = 0;
  for (;;) {
    if (wh_hub_check_cancelled(cancellable, error))
      return FALSE;
    g_autoptr(SoupMessage) msg = wh_hub_message_new(hub, "HEAD", url, error);
    if (!msg)
      return FALSE;
    /* Ask for the raw size, not a compressed one. */
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept-Encoding",
                                 "identity");
    g_autoptr(GError) local = NULL;
    g_autoptr(GBytes) b = soup_session_send_and_read(session, msg, cancellable, &local);
    guint st = b ? soup_message_get_status(msg) : 0;
    if (local && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_set_error_literal(error, WH_HUB_ERROR, WH_HUB_ERROR_CANCELLED, "cancelled");
      return FALSE;
    }
    SoupMessageHeaders *h = soup_message_get_response_headers(msg);
    const char *commit = b ? soup_message_headers_get_one(h, "X-Repo-Commit") : NULL;
    const char *linked = b ? soup_message_headers_get_one(h, "X-Linked-Etag") : NULL;
    if (b && st >= 300 && st < 400 && !commit && !linked) {
      /* A renamed repository: follow on the same host, HEAD again. */
      const char *loc = soup_message_headers_get_one(h, "Location");
      if (!loc || ++redirects > WH_HUB_MAX_REDIRECTS) {
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER,
                    "%s: too many redirects (a redirect loop) or a redirect without a target",
                    what);
        return FALSE;
      }
      char *next = wh_hub_resolve_location(url, loc, error);
      if (!next)
        return FALSE;
      g_free(url);
      url = next;
      continue;
    }
    if (b && ((st >= 200 && st < 300) || (st >= 300 && st < 400))) {
      const char *etag = linked ? linked : soup_message_headers_get_one(h, "ETag");
      const char *lsize = soup_message_headers_get_one(h, "X-Linked-Size");
      out->commit = g_strdup(commit);
      out->etag = wh_hub_normalize_etag(etag);
      if (lsize) {
        char *end = NULL;
        guint64 v = g_ascii_strtoull(lsize, &end, 10);
        out->has_size = end && end != lsize && *end == '\0';
        out->size = v;
      } else if (st < 300 && soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH) {
        out->size = (guint64)soup_message_headers_get_content_length(h);
        out->has_size = TRUE;
      }
      if (st >= 300) {
        const char *loc = soup_message_headers_get_one(h, "Location");
        out->url = loc ? wh_hub_resolve_location(url, loc, error) : NULL;
        if (!out->url) {
          if (!loc)
            g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                        "%s: the hub redirected without a Location", what);
          return FALSE;
        }
      } else {
        out->url = g_strdup(url);
      }
      if (!out->commit || !safe_name(out->commit, 64)) {
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                    "%s: the hub did not give a usable commit id (X-Repo-Commit); is %s a "
                    "Hugging Face hub?",
                    what, hub->endpoint);
        return FALSE;
      }
      if (!out->etag || !safe_name(out->etag, 128)) {
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                    "%s: the hub did not give a usable etag (X-Linked-Etag / ETag)", what);
        return FALSE;
      }
      if (!out->has_size) {
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                    "%s: the hub did not give the file size (X-Linked-Size)", what);
        return FALSE;
      }
      return TRUE;
    }
    gboolean retry = b ? wh_hub_status_is_retriable(st) : wh_hub_error_is_retriable(local);
    if (!retry || failures + 1 >= hub->max_retries) {
      if (wh_hub_set_tls_error(local, hub->endpoint, error))
        return FALSE;
      if (local)
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NETWORK, "cannot reach %s: %s", hub->endpoint,
                    local->message);
      else
        wh_hub_set_status_error(hub, msg, what, error);
      return FALSE;
    }
    if (!wh_hub_backoff(hub, failures++, st ? msg : NULL, cancellable)) {
      g_set_error_literal(error, WH_HUB_ERROR, WH_HUB_ERROR_CANCELLED, "cancelled");
      return FALSE;
    }
  }
}

/* --- the cache entries ------------------------------------------------------------------- */

static gboolean
link_snapshot(const char *repo_dir, const char *commit, const char *filename, const char *etag,
              const char *revision, char **out_path, GError **error)
{
  g_autofree char *snap = g_build_filename(repo_dir, "snapshots", commit, filename, NULL);
  g_autofree char *snapdir = g_path_get_dirname(snap);
  if (!mkdir_p(snapdir, error))
    return FALSE;
  guint depth = 0;
  for (const char *c = filename; *c; c++)
    depth += *c == '/';
  GString *target = g_string_new(NULL);
  for (guint i = 0; i < depth + 2; i++)
    g_string_append(target, "../");
  g_string_append_printf(target, "blobs/%s", etag);
  g_autofree char *tmp = g_strdup_printf("%s.whittle-link-%d", snap, (int)getpid());
  g_unlink(tmp);
  gboolean ok = symlink(target->str, tmp) == 0 && rename(tmp, snap) == 0;
  int e = errno;
  g_string_free(target, TRUE);
  if (!ok) {
    g_unlink(tmp);
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot create the link %s: %s", snap,
                g_strerror(e));
    return FALSE;
  }
  if (revision && strcmp(revision, commit) != 0) {
    g_autofree char *ref = g_build_filename(repo_dir, "refs", revision, NULL);
    g_autofree char *refdir = g_path_get_dirname(ref);
    g_autofree char *cur = NULL;
    if (!mkdir_p(refdir, error))
      return FALSE;
    if (!g_file_get_contents(ref, &cur, NULL, NULL) || strcmp(cur, commit) != 0) {
      g_autoptr(GError) local = NULL;
      if (!g_file_set_contents_full(ref, commit, -1,
                                    G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                    0644, &local)) {
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot write %s: %s", ref,
                    local->message);
        return FALSE;
      }
    }
  }
  *out_path = g_steal_pointer(&snap);
  return TRUE;
}

/* --- the transfer ------------------------------------------------------------------------- */

typedef struct {
  guint64 start, end, done; /* [start, end), done bytes from start */
} segment;

typedef enum { FATAL_NONE, FATAL_ERROR, FATAL_RESTART, FATAL_CHANGED } fatal_kind;

typedef struct transfer transfer;

typedef struct {
  transfer *t;
  guint index;
} worker_arg;

struct transfer {
  wh_hub *hub;
  const char *url, *etag, *filename, *blobs_dir;
  guint64 size;
  int fd;
  GMutex lock;
  GCond cond;
  segment *segs;
  guint n_segs;
  guint running;
  fatal_kind fatal;
  GError *error;
  GCancellable *cancel; /* fires on the caller's cancel and on a fatal error */
  gboolean reserved;    /* posix_fallocate succeeded: no need to watch free space */
  guint64 since_space_check;
  char status[160];
};

static void
set_fatal(transfer *t, fatal_kind kind, GError *e)
{
  g_mutex_lock(&t->lock);
  if (t->fatal == FATAL_NONE) {
    t->fatal = kind;
    t->error = e;
    e = NULL;
  }
  g_cond_broadcast(&t->cond);
  g_mutex_unlock(&t->lock);
  if (e)
    g_error_free(e);
  g_cancellable_cancel(t->cancel);
}

/* Sends GET with Range for [pos, end) following CDN redirects. Returns the stream. */
static GInputStream *
send_range(transfer *t, SoupSession *session, guint64 pos, guint64 end, SoupMessage **out_msg,
           GError **error)
{
  g_autofree char *url = g_strdup(t->url);
  for (guint redirects = 0;; redirects++) {
    SoupMessage *msg = wh_hub_message_new(t->hub, "GET", url, error);
    if (!msg)
      return NULL;
    SoupMessageHeaders *rq = soup_message_get_request_headers(msg);
    soup_message_headers_set_range(rq, (goffset)pos, (goffset)end - 1);
    soup_message_headers_replace(rq, "Accept-Encoding", "identity");
    GInputStream *in = soup_session_send(session, msg, t->cancel, error);
    if (!in) {
      g_object_unref(msg);
      return NULL;
    }
    guint st = soup_message_get_status(msg);
    if (st >= 300 && st < 400 && st != 304) {
      const char *loc =
          soup_message_headers_get_one(soup_message_get_response_headers(msg), "Location");
      char *next = NULL;
      if (loc && redirects < WH_HUB_MAX_REDIRECTS)
        next = wh_hub_resolve_location(url, loc, error);
      else
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER,
                    "downloading %s: too many redirects (a redirect loop)", t->filename);
      g_input_stream_close(in, NULL, NULL);
      g_object_unref(in);
      g_object_unref(msg);
      if (!next)
        return NULL;
      g_free(url);
      url = next;
      continue;
    }
    *out_msg = msg;
    return in;
  }
}

/* One attempt at fetching the rest of segment @i. Returns TRUE when the segment is
 * complete; FALSE with retry and msg_out for the caller's retry policy. */
static gboolean
fetch_once(transfer *t, SoupSession *session, guint i, guint8 *buf, gboolean *retry,
           SoupMessage **msg_out, GError **error)
{
  g_mutex_lock(&t->lock);
  guint64 pos = t->segs[i].start + t->segs[i].done, end = t->segs[i].end;
  g_mutex_unlock(&t->lock);
  *retry = FALSE;
  if (pos >= end)
    return TRUE;
  SoupMessage *msg = NULL;
  g_autoptr(GInputStream) in = send_range(t, session, pos, end, &msg, error);
  *msg_out = msg;
  if (!in) {
    *retry = error && *error && wh_hub_error_is_retriable(*error);
    return FALSE;
  }
  guint st = soup_message_get_status(msg);
  SoupMessageHeaders *h = soup_message_get_response_headers(msg);
  g_autofree char *what = g_strdup_printf("file %s", t->filename);

  /* The etag of the CDN answer, when it is a content hash, must be the one we expect. */
  g_autofree char *etag =
      wh_hub_normalize_etag(soup_message_headers_get_one(h, "X-Linked-Etag")
                                ? soup_message_headers_get_one(h, "X-Linked-Etag")
                                : soup_message_headers_get_one(h, "ETag"));
  if (SOUP_STATUS_IS_SUCCESSFUL(st) && etag && wh_hub_is_sha256_hex(etag) &&
      wh_hub_is_sha256_hex(t->etag) && g_ascii_strcasecmp(etag, t->etag) != 0) {
    set_fatal(t, FATAL_CHANGED,
              g_error_new(WH_HUB_ERROR, WH_HUB_ERROR_CHANGED,
                          "%s changed on the hub while it was downloading (etag %.12s… became "
                          "%.12s…)",
                          t->filename, t->etag, etag));
    return FALSE;
  }
  if (st == SOUP_STATUS_OK && pos > 0) {
    set_fatal(t, FATAL_RESTART, NULL);
    return FALSE;
  }
  if (st == SOUP_STATUS_PARTIAL_CONTENT) {
    goffset s, e, total;
    if (!soup_message_headers_get_content_range(h, &s, &e, &total) || s != (goffset)pos ||
        (total >= 0 && (guint64)total != t->size)) {
      set_fatal(t, FATAL_ERROR,
                g_error_new(WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                            "the server sent the wrong part of %s (Content-Range '%s' for bytes "
                            "%" G_GUINT64_FORMAT "- of a %" G_GUINT64_FORMAT "-byte file): its "
                            "size does not match what the hub announced",
                            t->filename,
                            soup_message_headers_get_one(h, "Content-Range")
                                ? soup_message_headers_get_one(h, "Content-Range")
                                : "missing",
                            pos, t->size));
      return FALSE;
    }
  } else if (st == SOUP_STATUS_OK) {
    goffset cl = soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH
                     ? soup_message_headers_get_content_length(h)
                     : -1;
    if (cl >= 0 && (guint64)cl != t->size) {
      set_fatal(t, FATAL_ERROR,
                g_error_new(WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                            "the server sent %" G_GINT64_FORMAT " bytes for %s, but the hub "
                            "announced %" G_GUINT64_FORMAT,
                            (gint64)cl, t->filename, t->size));
      return FALSE;
    }
  } else if (st == SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE) {
    set_fatal(t, FATAL_ERROR,
              g_error_new(
                  WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                  "the server has fewer bytes of %s than the hub announced (%" G_GUINT64_FORMAT ")",
                  t->filename, t->size));
    return FALSE;
  } else {
    if (wh_hub_status_is_retriable(st)) {
      *retry = TRUE;
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NETWORK, "HTTP %u from the download server",
                  st);
    } else {
      GError *e = NULL;
      wh_hub_set_status_error(t->hub, msg, what, &e);
      set_fatal(t, FATAL_ERROR, e);
    }
    return FALSE;
  }

  /* Stream: read only what is asked for; write at the offset. */
  while (pos < end) {
    gsize want = (gsize)MIN((guint64)CHUNK, end - pos);
    gssize n = g_input_stream_read(in, buf, want, t->cancel, error);
    if (n < 0) {
      *retry = wh_hub_error_is_retriable(*error);
      return FALSE;
    }
    if (n == 0) {
      *retry = TRUE;
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NETWORK,
                  "the connection closed %" G_GUINT64_FORMAT " bytes early", end - pos);
      return FALSE;
    }
    gsize off = 0;
    while (off < (gsize)n) {
      ssize_t w = pwrite(t->fd, buf + off, (gsize)n - off, (off_t)(pos + off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        int e = w < 0 ? errno : ENOSPC;
        GError *err;
        if (e == ENOSPC || e == EDQUOT) {
          err = NULL;
          set_no_space(&err, end - pos - off, free_space(t->hub, t->blobs_dir), t->blobs_dir);
        } else {
          err = g_error_new(WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot write %s.incomplete: %s",
                            t->etag, g_strerror(e));
        }
        set_fatal(t, FATAL_ERROR, err);
        return FALSE;
      }
      off += (gsize)w;
    }
    pos += (guint64)n;
    g_mutex_lock(&t->lock);
    t->segs[i].done += (guint64)n;
    t->since_space_check += (guint64)n;
    gboolean check = !t->reserved && t->since_space_check >= SPACE_CHECK_BYTES;
    if (check)
      t->since_space_check = 0;
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
    if (check) {
      guint64 left = 0;
      g_mutex_lock(&t->lock);
      for (guint k = 0; k < t->n_segs; k++)
        left += t->segs[k].end - t->segs[k].start - t->segs[k].done;
      g_mutex_unlock(&t->lock);
      gint64 have = free_space(t->hub, t->blobs_dir);
      if (have >= 0 && (guint64)have < left) {
        GError *err = NULL;
        set_no_space(&err, left, have, t->blobs_dir);
        set_fatal(t, FATAL_ERROR, err);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static gpointer
worker_main(gpointer data)
{
  worker_arg *wa = data;
  transfer *t = wa->t;
  guint i = wa->index;
  g_autoptr(SoupSession) session = wh_hub_session_new(t->hub);
  guint8 *buf = g_malloc(CHUNK);
  guint failures = 0;
  for (;;) {
    if (g_cancellable_is_cancelled(t->cancel))
      break;
    g_mutex_lock(&t->lock);
    guint64 before = t->segs[i].done;
    g_mutex_unlock(&t->lock);
    gboolean retry = FALSE;
    SoupMessage *msg = NULL;
    g_autoptr(GError) e = NULL;
    gboolean done = fetch_once(t, session, i, buf, &retry, &msg, &e);
    if (done) {
      g_clear_object(&msg);
      break;
    }
    if (g_cancellable_is_cancelled(t->cancel)) {
      g_clear_object(&msg);
      break;
    }
    g_mutex_lock(&t->lock);
    if (t->segs[i].done > before)
      failures = 0;
    g_mutex_unlock(&t->lock);
    if (!retry || failures + 1 >= t->hub->max_retries) {
      GError *f = NULL;
      if (retry)
        f = g_error_new(WH_HUB_ERROR, WH_HUB_ERROR_NETWORK,
                        "downloading %s failed %u times in a row (last: %s); check your "
                        "connection and run it again: it will continue where it stopped",
                        t->filename, failures + 1, e ? e->message : "unknown error");
      else if (e && e->domain == WH_HUB_ERROR)
        f = g_error_copy(e);
      else if (e && e->domain == G_TLS_ERROR) {
        g_autofree char *url = msg ? g_uri_to_string(soup_message_get_uri(msg)) : NULL;
        wh_hub_set_tls_error(e, url, &f);
      } else
        f = g_error_new(WH_HUB_ERROR, WH_HUB_ERROR_NETWORK, "downloading %s failed: %s",
                        t->filename, e ? e->message : "unknown error");
      g_clear_object(&msg);
      set_fatal(t, FATAL_ERROR, f);
      break;
    }
    guint st = msg ? soup_message_get_status(msg) : 0;
    g_mutex_lock(&t->lock);
    g_snprintf(t->status, sizeof t->status, "retrying after %s", e ? e->message : "an error");
    g_mutex_unlock(&t->lock);
    gboolean go =
        wh_hub_backoff(t->hub, failures++, st == 429 || st == 503 ? msg : NULL, t->cancel);
    g_clear_object(&msg);
    if (!go)
      break;
  }
  g_free(buf);
  g_mutex_lock(&t->lock);
  t->running--;
  g_cond_broadcast(&t->cond);
  g_mutex_unlock(&t->lock);
  g_free(wa);
  return NULL;
}

/* --- state file -------------------------------------------------------------------------- */

static gboolean
save_state(transfer *t, const char *state_path, const char *repo_id, const segment *snap, guint n)
{
  if (fdatasync(t->fd) != 0)
    return FALSE;
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_key_file_set_string(kf, "download", "etag", t->etag);
  g_key_file_set_uint64(kf, "download", "size", t->size);
  g_key_file_set_string(kf, "download", "repo", repo_id);
  g_key_file_set_string(kf, "download", "file", t->filename);
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < n; i++)
    g_string_append_printf(s, "%s%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT,
                           i ? ";" : "", snap[i].start, snap[i].end, snap[i].done);
  g_key_file_set_string(kf, "download", "segments", s->str);
  g_string_free(s, TRUE);
  gsize len;
  g_autofree char *data = g_key_file_to_data(kf, &len, NULL);
  return g_file_set_contents_full(state_path, data, (gssize)len,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0644, NULL);
}

/* Loads segments from the state file if it describes this etag/size and covers the file. */
static segment *
load_state(const char *state_path, const char *etag, guint64 size, guint *n_out)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_file(kf, state_path, G_KEY_FILE_NONE, NULL))
    return NULL;
  g_autofree char *e = g_key_file_get_string(kf, "download", "etag", NULL);
  guint64 sz = g_key_file_get_uint64(kf, "download", "size", NULL);
  g_autofree char *segs = g_key_file_get_string(kf, "download", "segments", NULL);
  if (!e || strcmp(e, etag) != 0 || sz != size || !segs)
    return NULL;
  g_auto(GStrv) parts = g_strsplit(segs, ";", -1);
  guint n = g_strv_length(parts);
  if (n == 0 || n > MAX_SEGMENTS)
    return NULL;
  segment *out = g_new0(segment, n);
  guint64 expect = 0;
  for (guint i = 0; i < n; i++) {
    guint64 a, b, d;
    if (sscanf(parts[i], "%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, &a, &b,
               &d) != 3 ||
        a != expect || b < a || d > b - a) {
      g_free(out);
      return NULL;
    }
    out[i] = (segment){a, b, d};
    expect = b;
  }
  if (expect != size) {
    g_free(out);
    return NULL;
  }
  *n_out = n;
  return out;
}

/* Bytes of the file already complete from byte 0 on. */
static guint64
contiguous_prefix(const segment *s, guint n)
{
  guint64 p = 0;
  for (guint i = 0; i < n; i++) {
    p = s[i].start + s[i].done;
    if (s[i].start + s[i].done < s[i].end)
      break;
  }
  return p;
}

static void
plan_segments(transfer *t, guint n)
{
  g_free(t->segs);
  t->n_segs = n;
  t->segs = g_new0(segment, n);
  for (guint i = 0; i < n; i++) {
    t->segs[i].start = t->size * i / n;
    t->segs[i].end = t->size * (i + 1) / n;
  }
}

/* Hashes [*hashed, upto) of the file into @ck. */
static gboolean
hash_range(int fd, GChecksum *ck, guint64 *hashed, guint64 upto, guint8 *buf)
{
  while (*hashed < upto) {
    gsize want = (gsize)MIN((guint64)(1u << 20), upto - *hashed);
    ssize_t n = pread(fd, buf, want, (off_t)*hashed);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    g_checksum_update(ck, buf, (gsize)n);
    *hashed += (guint64)n;
  }
  return TRUE;
}

typedef struct {
  GChecksumType type; /* SHA256 for LFS oids, SHA1 for git blob ids */
  char *expected;     /* lowercase hex, or NULL: nothing to check */
} check_spec;

static GChecksum *
checksum_new(const check_spec *cs, guint64 size)
{
  GChecksum *ck = g_checksum_new(cs->type);
  if (cs->type == G_CHECKSUM_SHA1) {
    char hdr[48];
    int n = g_snprintf(hdr, sizeof hdr, "blob %" G_GUINT64_FORMAT, size);
    g_checksum_update(ck, (const guchar *)hdr, (gssize)n + 1); /* with the NUL */
  }
  return ck;
}

static void
forward_cancel(GCancellable *from, gpointer to)
{
  g_cancellable_cancel(to);
}

/* Runs the segment workers until the file is complete, a fatal error, or cancel. Returns
 * the checksum hex of the whole file (when complete) or NULL with @error. */
static char *
run_transfer(transfer *t, const char *state_path, const char *repo_id, const check_spec *cs,
             wh_hub_download_params *p, GCancellable *cancellable, gboolean *resumed,
             GError **error)
{
  guint8 *hbuf = g_malloc(1u << 20);
  char *hex = NULL;
  for (int restarts = 0;; restarts++) {
    GChecksum *ck = checksum_new(cs, t->size);
    guint64 hashed = 0;
    t->fatal = FATAL_NONE;
    g_clear_error(&t->error);
    t->cancel = g_cancellable_new();
    gulong hid = cancellable ? g_cancellable_connect(cancellable, G_CALLBACK(forward_cancel),
                                                     t->cancel, NULL)
                             : 0;
    guint64 already = 0;
    for (guint i = 0; i < t->n_segs; i++)
      already += t->segs[i].done;
    if (already)
      *resumed = TRUE;
    t->running = 0;
    GPtrArray *threads = g_ptr_array_new();
    for (guint i = 0; i < t->n_segs; i++) {
      if (t->segs[i].done == t->segs[i].end - t->segs[i].start)
        continue;
      worker_arg *wa = g_new0(worker_arg, 1);
      wa->t = t;
      wa->index = i;
      t->running++;
      g_ptr_array_add(threads, g_thread_new("wh-hub-segment", worker_main, wa));
    }
    gint64 last_state = g_get_monotonic_time();
    gint64 last_progress = 0;
    for (;;) {
      g_mutex_lock(&t->lock);
      guint running = t->running;
      guint64 prefix = contiguous_prefix(t->segs, t->n_segs);
      guint64 done = 0;
      for (guint i = 0; i < t->n_segs; i++)
        done += t->segs[i].done;
      segment snap[MAX_SEGMENTS];
      memcpy(snap, t->segs, t->n_segs * sizeof *snap);
      char status[160];
      g_strlcpy(status, t->status, sizeof status);
      t->status[0] = '\0';
      g_mutex_unlock(&t->lock);

      hash_range(t->fd, ck, &hashed, prefix, hbuf);
      gint64 now = g_get_monotonic_time();
      if (p->progress && (now - last_progress > 200000 || running == 0)) {
        p->progress(done, t->size, status[0] ? status : NULL, p->progress_data);
        last_progress = now;
      }
      if (now - last_state > STATE_INTERVAL_US && t->fatal == FATAL_NONE) {
        save_state(t, state_path, repo_id, snap, t->n_segs);
        last_state = now;
      }
      if (running == 0)
        break;
      g_mutex_lock(&t->lock);
      if (t->running)
        g_cond_wait_until(&t->cond, &t->lock, g_get_monotonic_time() + 200000);
      g_mutex_unlock(&t->lock);
    }
    for (guint i = 0; i < threads->len; i++)
      g_thread_join(threads->pdata[i]);
    g_ptr_array_free(threads, TRUE);
    if (hid)
      g_cancellable_disconnect(cancellable, hid);
    g_clear_object(&t->cancel);

    segment snap[MAX_SEGMENTS];
    memcpy(snap, t->segs, t->n_segs * sizeof *snap);
    if (t->fatal == FATAL_RESTART && restarts < 2) {
      /* The server ignores Range: one stream from byte 0. */
      g_checksum_free(ck);
      plan_segments(t, 1);
      if (ftruncate(t->fd, 0) != 0) {
        /* keep going: pwrite overwrites */
      }
      if (p->progress)
        p->progress(0, t->size, "the server ignores Range requests: restarting from byte 0",
                    p->progress_data);
      continue;
    }
    if (t->fatal == FATAL_RESTART) {
      g_checksum_free(ck);
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                  "the server keeps answering Range requests for %s with the whole file",
                  t->filename);
      break;
    }
    if (t->fatal != FATAL_NONE) {
      g_checksum_free(ck);
      if (t->fatal != FATAL_CHANGED)
        save_state(t, state_path, repo_id, snap, t->n_segs);
      g_propagate_error(error, g_steal_pointer(&t->error));
      break;
    }
    if (cancellable && g_cancellable_is_cancelled(cancellable)) {
      g_checksum_free(ck);
      save_state(t, state_path, repo_id, snap, t->n_segs);
      g_set_error_literal(error, WH_HUB_ERROR, WH_HUB_ERROR_CANCELLED,
                          "cancelled (run the download again to continue)");
      break;
    }
    if (!hash_range(t->fd, ck, &hashed, t->size, hbuf)) {
      g_checksum_free(ck);
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot read back %s.incomplete", t->etag);
      break;
    }
    hex = g_strdup(g_checksum_get_string(ck));
    g_checksum_free(ck);
    break;
  }
  g_free(hbuf);
  return hex;
}

/* --- the download -------------------------------------------------------------------------- */

static wh_hub_download_result *
offline_lookup(wh_hub *hub, const char *repo_dir, const char *repo_id, const char *filename,
               const char *revision, GError **error)
{
  g_autofree char *ref = g_build_filename(repo_dir, "refs", revision, NULL);
  g_autofree char *commit = NULL;
  if (!g_file_get_contents(ref, &commit, NULL, NULL))
    commit = g_strdup(revision);
  g_strstrip(commit);
  g_autofree char *snap = NULL;
  if (safe_name(commit, 64))
    snap = g_build_filename(repo_dir, "snapshots", commit, filename, NULL);
  struct stat st;
  if (!snap || stat(snap, &st) != 0) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_OFFLINE,
                "offline mode (HF_HUB_OFFLINE is set) and %s of %s (revision %s) is not in "
                "the cache %s",
                filename, repo_id, revision, hub->cache_dir);
    return NULL;
  }
  wh_hub_download_result *r = g_new0(wh_hub_download_result, 1);
  r->path = g_steal_pointer(&snap);
  char *real = realpath(r->path, NULL);
  r->blob_path = g_strdup(real);
  free(real);
  r->commit = g_steal_pointer(&commit);
  r->etag = r->blob_path ? g_path_get_basename(r->blob_path) : NULL;
  r->size = (guint64)st.st_size;
  r->was_cached = TRUE;
  return r;
}

/* Removes partial downloads of the same file with another etag; returns a notice. */
static char *
drop_stale_partials(const char *blobs_dir, const char *filename, const char *etag)
{
  GDir *d = g_dir_open(blobs_dir, 0, NULL);
  if (!d)
    return NULL;
  char *notice = NULL;
  const char *name;
  GPtrArray *drop = g_ptr_array_new_with_free_func(g_free);
  while ((name = g_dir_read_name(d))) {
    if (!g_str_has_suffix(name, ".incomplete.whittle"))
      continue;
    g_autofree char *sp = g_build_filename(blobs_dir, name, NULL);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_file(kf, sp, G_KEY_FILE_NONE, NULL))
      continue;
    g_autofree char *f = g_key_file_get_string(kf, "download", "file", NULL);
    g_autofree char *e = g_key_file_get_string(kf, "download", "etag", NULL);
    if (!f || !e || strcmp(f, filename) != 0 || strcmp(e, etag) == 0 || !safe_name(e, 128))
      continue;
    g_ptr_array_add(drop, g_strdup(e));
  }
  g_dir_close(d);
  for (guint i = 0; i < drop->len; i++) {
    const char *e = drop->pdata[i];
    g_autofree char *pp = g_strdup_printf("%s/%s.incomplete", blobs_dir, e);
    g_autofree char *sp = g_strdup_printf("%s/%s.incomplete.whittle", blobs_dir, e);
    g_unlink(pp);
    g_unlink(sp);
    g_free(notice);
    notice = g_strdup_printf("%s changed on the hub since the partial download began (etag "
                             "%.12s… is now %.12s…); the old partial copy was discarded and "
                             "the new version downloaded from the start",
                             filename, e, etag);
  }
  g_ptr_array_unref(drop);
  return notice;
}

static wh_hub_download_result *
download_once(wh_hub *hub, const char *repo_id, const char *filename, wh_hub_download_params *p,
              const char *revision, GCancellable *cancellable, gboolean *again, GError **error)
{
  *again = FALSE;
  g_autofree char *repo_folder = wh_hub_repo_folder_name(repo_id);
  g_autofree char *repo_dir = g_build_filename(hub->cache_dir, repo_folder, NULL);
  if (hub->offline)
    return offline_lookup(hub, repo_dir, repo_id, filename, revision, error);

  g_autofree char *resolve = wh_hub_resolve_url(hub, repo_id, revision, filename);
  g_autofree char *what = g_strdup_printf("file %s of model %s", filename, repo_id);
  g_autoptr(SoupSession) session = wh_hub_session_new(hub);
  head_info hi = {0};
  if (p->progress)
    p->progress(0, 0, "asking the hub", p->progress_data);
  if (!do_head(hub, session, resolve, what, &hi, cancellable, error)) {
    head_info_clear(&hi);
    return NULL;
  }
  g_autofree char *blobs_dir = g_build_filename(repo_dir, "blobs", NULL);
  g_autofree char *blob = g_build_filename(blobs_dir, hi.etag, NULL);
  g_autofree char *part = g_strconcat(blob, ".incomplete", NULL);
  g_autofree char *state = g_strconcat(part, ".whittle", NULL);
  wh_hub_download_result *r = g_new0(wh_hub_download_result, 1);
  r->commit = g_strdup(hi.commit);
  r->etag = g_strdup(hi.etag);
  r->size = hi.size;
  r->blob_path = g_strdup(blob);

  check_spec cs = {G_CHECKSUM_SHA256, NULL};
  if (p->expected_sha256 && wh_hub_is_sha256_hex(p->expected_sha256))
    cs.expected = g_ascii_strdown(p->expected_sha256, -1);
  else if (wh_hub_is_sha256_hex(hi.etag))
    cs.expected = g_ascii_strdown(hi.etag, -1);
  else if (strlen(hi.etag) == 40) {
    cs.type = G_CHECKSUM_SHA1;
    cs.expected = g_ascii_strdown(hi.etag, -1);
  }

  struct stat st;
  if (!mkdir_p(blobs_dir, error))
    goto fail;
  if (stat(blob, &st) == 0 && S_ISREG(st.st_mode) && (guint64)st.st_size == hi.size) {
    r->was_cached = TRUE;
  } else {
    r->notice = drop_stale_partials(blobs_dir, filename, hi.etag);
    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      int e = errno;
      g_set_error(error, WH_HUB_ERROR, e == ENOSPC ? WH_HUB_ERROR_NO_SPACE : WH_HUB_ERROR_IO,
                  "cannot open %s: %s", part, g_strerror(e));
      goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      close(fd);
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO,
                  "%s is already being downloaded by another Whittle process; wait for it to "
                  "finish",
                  filename);
      goto fail;
    }
    transfer t = {0};
    t.hub = hub;
    t.url = hi.url;
    t.etag = hi.etag;
    t.filename = filename;
    t.blobs_dir = blobs_dir;
    t.size = hi.size;
    t.fd = fd;
    g_mutex_init(&t.lock);
    g_cond_init(&t.cond);
    guint n = 0;
    t.segs = load_state(state, hi.etag, hi.size, &n);
    if (t.segs && fstat(fd, &st) == 0) {
      t.n_segs = n;
    } else {
      guint want = p->n_segments ? MIN(p->n_segments, (guint)MAX_SEGMENTS) : 4;
      guint64 threshold = p->segment_threshold ? p->segment_threshold : (32u << 20);
      if (hi.size < threshold)
        want = 1;
      want = (guint)MAX(1, MIN((guint64)want, hi.size / MIN_SEGMENT));
      if (ftruncate(fd, 0) != 0) {
        /* overwritten anyway */
      }
      plan_segments(&t, want);
    }
    /* Free space: what is still to come, minus what the partial file already holds. */
    guint64 done = 0;
    for (guint i = 0; i < t.n_segs; i++)
      done += t.segs[i].done;
    guint64 allocated = fstat(fd, &st) == 0 ? (guint64)st.st_blocks * 512 : 0;
    guint64 need = hi.size > allocated ? hi.size - allocated : 0;
    gint64 have = free_space(hub, blobs_dir);
    gboolean ok = TRUE;
    if (have >= 0 && (guint64)have < need) {
      set_no_space(error, hi.size - done, have, blobs_dir);
      ok = FALSE;
    } else if (hi.size > 0) {
      int e = posix_fallocate(fd, 0, (off_t)hi.size);
      if (e == 0)
        t.reserved = !hub->free_space; /* a simulated disk is watched while writing */
      else if (e == ENOSPC) {
        set_no_space(error, hi.size - done, free_space(hub, blobs_dir), blobs_dir);
        ok = FALSE;
      }
    }
    char *hex = NULL;
    if (ok) {
      g_autofree char *msg = g_strdup_printf("downloading%s", t.n_segs > 1 ? " (segments)" : "");
      if (p->progress)
        p->progress(done, hi.size, msg, p->progress_data);
      hex = run_transfer(&t, state, repo_id, &cs, p, cancellable, &r->resumed, error);
    }
    if (hex && cs.expected && g_ascii_strcasecmp(hex, cs.expected) != 0) {
      /* Corrupted on the way: drop everything and let the caller run it again. */
      g_unlink(state);
      g_unlink(part);
      *again = TRUE;
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_CHECKSUM,
                  "%s arrived corrupted: its %s is %s but the hub says %s", filename,
                  cs.type == G_CHECKSUM_SHA1 ? "git blob sha1" : "sha256", hex, cs.expected);
      g_clear_pointer(&hex, g_free);
    } else if (!hex && error && *error && (*error)->code == WH_HUB_ERROR_CHANGED) {
      g_unlink(state);
      g_unlink(part);
      *again = TRUE;
    }
    if (hex) {
      if (fsync(fd) != 0 || rename(part, blob) != 0) {
        int e = errno;
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot move %s into place: %s", part,
                    g_strerror(e));
        g_clear_pointer(&hex, g_free);
      } else {
        g_unlink(state);
        fsync_dir(blobs_dir);
      }
    }
    close(fd);
    g_free(t.segs);
    g_clear_error(&t.error);
    g_mutex_clear(&t.lock);
    g_cond_clear(&t.cond);
    if (!hex)
      goto fail;
    g_free(hex);
  }
  if (!link_snapshot(repo_dir, hi.commit, filename, hi.etag, revision, &r->path, error))
    goto fail;
  if (p->progress)
    p->progress(hi.size, hi.size, "done", p->progress_data);
  g_free(cs.expected);
  head_info_clear(&hi);
  return r;
fail:
  g_free(cs.expected);
  head_info_clear(&hi);
  wh_hub_download_result_free(r);
  return NULL;
}

wh_hub_download_result *
wh_hub_download(wh_hub *hub, const char *repo_id, const char *filename,
                const wh_hub_download_params *params, GCancellable *cancellable, GError **error)
{
  wh_hub_download_params p;
  if (params)
    p = *params;
  else
    wh_hub_download_default_params(&p);
  const char *revision = p.revision ? p.revision : "main";
  if (!wh_hub_validate_repo_id(repo_id, error) || !wh_hub_validate_filename(filename, error) ||
      !wh_hub_validate_revision(revision, error))
    return NULL;
  g_autofree char *notice = NULL;
  for (guint attempt = 0;; attempt++) {
    gboolean again = FALSE;
    g_autoptr(GError) local = NULL;
    wh_hub_download_result *r =
        download_once(hub, repo_id, filename, &p, revision, cancellable, &again, &local);
    if (r) {
      if (notice && !r->notice)
        r->notice = g_steal_pointer(&notice);
      return r;
    }
    if (!again || attempt >= 2 || (cancellable && g_cancellable_is_cancelled(cancellable))) {
      if (again && local->code == WH_HUB_ERROR_CHECKSUM)
        g_prefix_error(&local, "gave up after %u attempts: ", attempt + 1);
      g_propagate_error(error, g_steal_pointer(&local));
      return NULL;
    }
    g_free(notice);
    notice = g_strdup_printf("%s; downloading it again", local->message);
    if (p.progress)
      p.progress(0, 0, notice, p.progress_data);
  }
}
