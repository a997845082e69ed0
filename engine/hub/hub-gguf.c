/* hub-gguf.c — reading the header of a remote GGUF with Range requests.
 *
 * Implementation notes
 * --------------------
 * wh_hub_gguf_header_end() walks the header layout of spec/gguf-container.md just far
 * enough to know where the tensor infos end (it does not interpret anything; the real
 * parsing is the GGUF reader's job). Every step checks the bytes left first; counts are
 * never used to allocate, so a hostile count only makes the walk stop for lack of bytes.
 *
 * The GGUF reader insists that every tensor's data lies inside the file. We give it what it
 * asks without downloading the data: the fetched prefix goes into an unlinked temporary
 * file extended (sparse, no disk used) to the remote file's size, which the reader maps.
 */
#include "config.h"

#include "hub-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define HEADER_FIRST (64u << 10)
#define HEADER_MAX (256u << 20)

typedef struct {
  const guint8 *p;
  gsize len, pos;
} walker;

static gboolean
take(walker *w, gsize n)
{
  if (n > w->len - w->pos)
    return FALSE;
  w->pos += n;
  return TRUE;
}

static gboolean
rd64(walker *w, guint64 *v)
{
  if (8 > w->len - w->pos)
    return FALSE;
  memcpy(v, w->p + w->pos, 8);
  *v = GUINT64_FROM_LE(*v);
  w->pos += 8;
  return TRUE;
}

static gboolean
rd32(walker *w, guint32 *v)
{
  if (4 > w->len - w->pos)
    return FALSE;
  memcpy(v, w->p + w->pos, 4);
  *v = GUINT32_FROM_LE(*v);
  w->pos += 4;
  return TRUE;
}

static gboolean
skip_string(walker *w)
{
  guint64 n;
  return rd64(w, &n) && n <= w->len - w->pos && take(w, (gsize)n);
}

static const gsize scalar_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* Returns 1 ok, 0 need more bytes, -1 corrupt. */
static int
skip_value(walker *w, guint32 type, guint depth)
{
  if (type >= G_N_ELEMENTS(scalar_size) || depth > 8)
    return -1;
  if (type == 8)
    return skip_string(w) ? 1 : 0;
  if (type != 9)
    return take(w, scalar_size[type]) ? 1 : 0;
  guint32 et;
  guint64 n;
  if (!rd32(w, &et) || !rd64(w, &n))
    return 0;
  if (et >= G_N_ELEMENTS(scalar_size))
    return -1;
  if (et != 8 && et != 9) {
    if (n > (w->len - w->pos) / scalar_size[et])
      return 0;
    return take(w, (gsize)n * scalar_size[et]) ? 1 : 0;
  }
  for (guint64 i = 0; i < n; i++) {
    if (w->pos == w->len)
      return 0;
    int r = skip_value(w, et, depth + 1);
    if (r <= 0)
      return r;
  }
  return 1;
}

gint64
wh_hub_gguf_header_end(const guint8 *data, gsize len, GError **error)
{
  walker w = {data, len, 0};
  guint32 magic, version;
  guint64 n_tensors, n_kv;
  if (len >= 4 && memcmp(data, "GGUF", 4) != 0) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                "the remote file does not start with the GGUF magic: it is not a GGUF file");
    return -1;
  }
  if (!rd32(&w, &magic) || !rd32(&w, &version) || !rd64(&w, &n_tensors) || !rd64(&w, &n_kv))
    return 0;
  if (version < 2 || version > 3) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                "the remote GGUF has version %u; only versions 2 and 3 are supported", version);
    return -1;
  }
  for (guint64 i = 0; i < n_kv; i++) {
    guint32 type;
    if (w.pos == w.len || !skip_string(&w) || !rd32(&w, &type))
      return 0;
    int r = skip_value(&w, type, 0);
    if (r < 0) {
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                  "the remote GGUF header is corrupt: metadata entry %" G_GUINT64_FORMAT
                  " has an invalid type",
                  i);
      return -1;
    }
    if (r == 0)
      return 0;
  }
  for (guint64 i = 0; i < n_tensors; i++) {
    guint32 n_dims, type;
    if (w.pos == w.len || !skip_string(&w) || !rd32(&w, &n_dims))
      return 0;
    if (n_dims > 8) {
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                  "the remote GGUF header is corrupt: tensor %" G_GUINT64_FORMAT
                  " claims %u dimensions",
                  i, n_dims);
      return -1;
    }
    if (!take(&w, 8u * n_dims) || !rd32(&w, &type) || !take(&w, 8))
      return 0;
  }
  return (gint64)w.pos;
}

wh_gguf *
wh_hub_read_gguf_header(wh_hub *hub, const char *repo_id, const char *revision,
                        const char *filename, guint64 *header_bytes, GCancellable *cancellable,
                        GError **error)
{
  if (!revision)
    revision = "main";
  if (!wh_hub_validate_repo_id(repo_id, error) || !wh_hub_validate_filename(filename, error) ||
      !wh_hub_validate_revision(revision, error))
    return NULL;
  g_autofree char *url = wh_hub_resolve_url(hub, repo_id, revision, filename);
  g_autofree char *what = g_strdup_printf("file %s of model %s", filename, repo_id);
  g_autoptr(SoupSession) session = wh_hub_session_new(hub);
  GByteArray *buf = g_byte_array_new();
  guint64 total = 0;
  gsize want = HEADER_FIRST;
  gint64 end = 0;
  for (;;) {
    g_autoptr(SoupMessage) msg = NULL;
    g_autoptr(GBytes) part = wh_hub_get(hub, session, url, what, (gint64)buf->len, (gint64)want - 1,
                                        want - buf->len, &msg, cancellable, error);
    if (!part) {
      g_byte_array_unref(buf);
      return NULL;
    }
    SoupMessageHeaders *h = soup_message_get_response_headers(msg);
    goffset s, e, t = -1;
    gsize plen;
    const guint8 *pd = g_bytes_get_data(part, &plen);
    if (soup_message_get_status(msg) == SOUP_STATUS_PARTIAL_CONTENT) {
      if (!soup_message_headers_get_content_range(h, &s, &e, &t) || s != (goffset)buf->len) {
        g_byte_array_unref(buf);
        g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                    "the server answered a Range request for %s with a wrong Content-Range",
                    filename);
        return NULL;
      }
      g_byte_array_append(buf, pd, (guint)plen);
    } else {
      /* 200: the server ignored Range and sent the file from byte 0. */
      t = soup_message_headers_get_content_length(h);
      g_byte_array_set_size(buf, 0);
      g_byte_array_append(buf, pd, (guint)plen);
    }
    if (t > 0)
      total = (guint64)t;
    end = wh_hub_gguf_header_end(buf->data, buf->len, error);
    if (end < 0) {
      g_byte_array_unref(buf);
      return NULL;
    }
    if (end > 0)
      break;
    if (plen == 0 || (total && buf->len >= total) || want >= HEADER_MAX) {
      g_byte_array_unref(buf);
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL,
                  want >= HEADER_MAX
                      ? "the header of %s is larger than 256 MiB; refusing to read more"
                      : "the remote file %s ends inside its GGUF header: it is truncated",
                  filename);
      return NULL;
    }
    want = MIN((gsize)HEADER_MAX, want * 2);
    if (total)
      want = (gsize)MIN((guint64)want, total);
  }
  if (header_bytes)
    *header_bytes = buf->len;
  if (!total || total < buf->len)
    total = buf->len;

  /* Sparse copy: the prefix, then a hole up to the remote size. */
  g_autofree char *tmpl = NULL;
  int fd = g_file_open_tmp("whittle-header-XXXXXX.gguf", &tmpl, error);
  if (fd < 0) {
    g_byte_array_unref(buf);
    return NULL;
  }
  gboolean ok = TRUE;
  gsize off = 0;
  while (ok && off < buf->len) {
    ssize_t n = write(fd, buf->data + off, buf->len - off);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    off += ok ? (gsize)n : 0;
  }
  if (ok && ftruncate(fd, (off_t)total) != 0)
    ok = FALSE;
  int saved = errno;
  close(fd);
  g_byte_array_unref(buf);
  wh_gguf *g = NULL;
  if (!ok)
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot write the header of %s to %s: %s",
                filename, tmpl, g_strerror(saved));
  else {
    g_autoptr(GError) local = NULL;
    g = wh_gguf_open_full(tmpl, WH_GGUF_OPEN_NO_SPLITS, &local);
    if (!g)
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL, "the header of %s is invalid: %s",
                  filename, local->message);
  }
  g_unlink(tmpl); /* the mapping stays valid */
  return g;
}
