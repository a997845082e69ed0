/* hub-token.c — the Hugging Face token in the Secret Service, HF_TOKEN or the token file (see
 * hub-token.h). The only file of the engine that talks to libsecret. */
#include "config.h"

#include "hub/hub-token.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <libsecret/secret.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_MAX 1024

static const SecretSchema *
token_schema(void)
{
  static const SecretSchema schema = {
      "io.github.whittle.Whittle.Token",
      SECRET_SCHEMA_NONE,
      {
          {"endpoint", SECRET_SCHEMA_ATTRIBUTE_STRING},
          {NULL, 0},
      },
      0,
      NULL,
      NULL,
      NULL,
      NULL,
      NULL,
      NULL,
      NULL,
  };
  return &schema;
}

const char *
wh_hub_token_source_to_string(wh_hub_token_source source)
{
  switch (source) {
  case WH_HUB_TOKEN_FROM_KEYRING:
    return "keyring";
  case WH_HUB_TOKEN_FROM_ENV:
    return "env";
  case WH_HUB_TOKEN_FROM_FILE:
    return "file";
  case WH_HUB_TOKEN_FROM_NONE:
    break;
  }
  return "none";
}

static void
wipe_free(char *s)
{
  if (s) {
    memset(s, 0, strlen(s));
    g_free(s);
  }
}

void
wh_hub_token_info_free(wh_hub_token_info *info)
{
  if (!info)
    return;
  wipe_free(info->token);
  g_free(info->notice);
  g_free(info->file_path);
  g_free(info);
}

gboolean
wh_hub_token_validate(const char *token, GError **error)
{
  gsize n = token ? strlen(token) : 0;
  if (n == 0 || n > TOKEN_MAX) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
                "the token is %s; copy it again from https://huggingface.co/settings/tokens",
                n == 0 ? "empty" : "longer than 1024 characters");
    return FALSE;
  }
  for (gsize i = 0; i < n; i++) {
    guchar c = (guchar)token[i];
    if (c <= ' ' || c >= 0x7f) {
      g_set_error(
          error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
          "the token contains a space, control or non-ASCII character at position %" G_GSIZE_FORMAT
          "; copy it again from https://huggingface.co/settings/tokens",
          i + 1);
      return FALSE;
    }
  }
  return TRUE;
}

static char *
normalize_endpoint(const char *endpoint)
{
  if (!endpoint || !*endpoint)
    endpoint = g_getenv("HF_ENDPOINT");
  if (!endpoint || !*endpoint)
    endpoint = "https://huggingface.co";
  char *ep = g_strdup(endpoint);
  gsize n = strlen(ep);
  while (n > 0 && ep[n - 1] == '/')
    ep[--n] = '\0';
  return ep;
}

static char *
token_file_path(const char *hf_home)
{
  const char *p = g_getenv("HF_TOKEN_PATH");
  if (p && *p)
    return g_strdup(p);
  if (hf_home && *hf_home)
    return g_build_filename(hf_home, "token", NULL);
  const char *env = g_getenv("HF_HOME");
  if (env && *env)
    return g_build_filename(env, "token", NULL);
  return g_build_filename(g_get_user_cache_dir(), "huggingface", "token", NULL);
}

gboolean
wh_hub_token_keyring_reachable(void)
{
  const char *off = g_getenv("WH_NO_SECRET_SERVICE");
  if (off && *off && strcmp(off, "0") != 0)
    return FALSE;
  const char *addr = g_getenv("DBUS_SESSION_BUS_ADDRESS");
  if (addr && *addr)
    return TRUE;
  /* GLib finds the bus at $XDG_RUNTIME_DIR/bus too; anything else would mean autolaunching a
   * bus daemon (dbus-launch), which a token lookup must never do. */
  const char *run = g_getenv("XDG_RUNTIME_DIR");
  if (!run || !*run)
    return FALSE;
  g_autofree char *bus = g_build_filename(run, "bus", NULL);
  struct stat st;
  return stat(bus, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Reads the token file: the first line, trimmed; NULL when absent or empty. */
static char *
read_token_file(const char *path)
{
  char *contents = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &contents, &len, NULL))
    return NULL;
  char *nl = strchr(contents, '\n');
  if (nl)
    *nl = '\0';
  g_strstrip(contents);
  if (!*contents || !wh_hub_token_validate(contents, NULL)) {
    memset(contents, 0, len);
    g_free(contents);
    return NULL;
  }
  return contents;
}

/* The keyring's token for @ep: TRUE when the Secret Service answered (with or without a
 * token), FALSE with *@why when it could not be asked. */
static gboolean
keyring_lookup(const char *ep, char **token, char **why, GCancellable *cancellable)
{
  *token = NULL;
  if (!wh_hub_token_keyring_reachable()) {
    *why = g_strdup("no Secret Service is reachable (no D-Bus session bus)");
    return FALSE;
  }
  GError *e = NULL;
  char *pw = secret_password_lookup_sync(token_schema(), cancellable, &e, "endpoint", ep, NULL);
  if (e) {
    *why = g_strdup_printf("the Secret Service did not answer (%s)", e->message);
    g_error_free(e);
    return FALSE;
  }
  if (pw) {
    *token = g_strdup(pw);
    secret_password_free(pw);
  }
  return TRUE;
}

wh_hub_token_info *
wh_hub_token_load(const char *endpoint, const char *hf_home, GCancellable *cancellable)
{
  g_autofree char *ep = normalize_endpoint(endpoint);
  wh_hub_token_info *info = g_new0(wh_hub_token_info, 1);
  info->file_path = token_file_path(hf_home);
  g_autofree char *why = NULL;
  info->keyring_available = keyring_lookup(ep, &info->token, &why, cancellable);
  if (info->token) {
    info->source = WH_HUB_TOKEN_FROM_KEYRING;
    return info;
  }
  const char *from_what =
      info->keyring_available ? "the Secret Service holds no token for this hub" : why;
  const char *env = g_getenv("HF_TOKEN");
  if (env && *env && wh_hub_token_validate(env, NULL)) {
    info->token = g_strdup(env);
    info->source = WH_HUB_TOKEN_FROM_ENV;
    info->notice = g_strdup_printf("%s: using the token in HF_TOKEN", from_what);
    return info;
  }
  info->token = read_token_file(info->file_path);
  if (info->token) {
    info->source = WH_HUB_TOKEN_FROM_FILE;
    info->notice = g_strdup_printf("%s: using the token file %s", from_what, info->file_path);
    return info;
  }
  info->notice = g_strdup_printf("%s, HF_TOKEN is not set and there is no token file (%s): "
                                 "no token",
                                 from_what, info->file_path);
  return info;
}

/* Writes @token to @path (mode 0600) through a temporary file in the same folder. */
static gboolean
write_token_file(const char *path, const char *token, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    int err = errno;
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot create %s: %s", dir, g_strerror(err));
    return FALSE;
  }
  GError *e = NULL;
  if (!g_file_set_contents_full(path, token, -1,
                                G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600,
                                &e)) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot write the token file: %s",
                e->message);
    g_error_free(e);
    return FALSE;
  }
  return TRUE;
}

gboolean
wh_hub_token_store(const char *endpoint, const char *hf_home, const char *token,
                   gboolean file_fallback, wh_hub_token_source *stored_in, char **notice,
                   GCancellable *cancellable, GError **error)
{
  if (stored_in)
    *stored_in = WH_HUB_TOKEN_FROM_NONE;
  if (notice)
    *notice = NULL;
  if (!wh_hub_token_validate(token, error))
    return FALSE;
  g_autofree char *ep = normalize_endpoint(endpoint);
  g_autofree char *why = NULL;
  if (wh_hub_token_keyring_reachable()) {
    GError *e = NULL;
    g_autofree char *label = g_strdup_printf("Hugging Face token for %s (Whittle)", ep);
    if (secret_password_store_sync(token_schema(), SECRET_COLLECTION_DEFAULT, label, token,
                                   cancellable, &e, "endpoint", ep, NULL)) {
      if (stored_in)
        *stored_in = WH_HUB_TOKEN_FROM_KEYRING;
      if (notice)
        *notice = g_strdup("the token is stored in your keyring (Secret Service)");
      return TRUE;
    }
    why = g_strdup_printf("the Secret Service did not store the token (%s)", e->message);
    g_error_free(e);
  } else {
    why = g_strdup("no Secret Service is reachable (no D-Bus session bus)");
  }
  if (!file_fallback) {
    g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "%s; set HF_TOKEN in the environment instead",
                why);
    return FALSE;
  }
  g_autofree char *path = token_file_path(hf_home);
  if (!write_token_file(path, token, error))
    return FALSE;
  if (stored_in)
    *stored_in = WH_HUB_TOKEN_FROM_FILE;
  if (notice)
    *notice = g_strdup_printf("%s: the token was saved to %s instead (readable only by you; "
                              "other Hugging Face tools use it too)",
                              why, path);
  return TRUE;
}

gboolean
wh_hub_token_clear(const char *endpoint, const char *hf_home, gboolean also_file, char **notice,
                   GCancellable *cancellable, GError **error)
{
  g_autofree char *ep = normalize_endpoint(endpoint);
  GString *said = g_string_new(NULL);
  gboolean ok = TRUE;
  if (wh_hub_token_keyring_reachable()) {
    GError *e = NULL;
    gboolean removed =
        secret_password_clear_sync(token_schema(), cancellable, &e, "endpoint", ep, NULL);
    if (e) {
      g_string_append_printf(said, "the Secret Service did not answer (%s)", e->message);
      g_error_free(e);
    } else {
      g_string_append(said, removed ? "removed the token from your keyring"
                                    : "no token was in your keyring");
    }
  } else {
    g_string_append(said, "no Secret Service is reachable");
  }
  if (also_file) {
    g_autofree char *path = token_file_path(hf_home);
    if (g_unlink(path) == 0) {
      g_string_append_printf(said, "; removed %s", path);
    } else if (errno != ENOENT) {
      int err = errno;
      g_set_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO, "cannot remove the token file %s: %s", path,
                  g_strerror(err));
      ok = FALSE;
    }
  }
  const char *env = g_getenv("HF_TOKEN");
  if (env && *env)
    g_string_append(said, "; HF_TOKEN is still set in the environment (unset it too)");
  if (notice)
    *notice = g_string_free(said, FALSE);
  else
    g_string_free(said, TRUE);
  return ok;
}

wh_hub_token_source
wh_hub_use_stored_token(wh_hub *hub, GCancellable *cancellable)
{
  g_autofree char *token = NULL, *why = NULL;
  if (keyring_lookup(wh_hub_get_endpoint(hub), &token, &why, cancellable) && token) {
    wh_hub_set_token(hub, token);
    memset(token, 0, strlen(token));
    return WH_HUB_TOKEN_FROM_KEYRING;
  }
  if (!wh_hub_has_token(hub))
    return WH_HUB_TOKEN_FROM_NONE;
  const char *env = g_getenv("HF_TOKEN");
  return env && *env ? WH_HUB_TOKEN_FROM_ENV : WH_HUB_TOKEN_FROM_FILE;
}
