/* hub-token.h — where the Hugging Face token lives: the Secret Service, else HF_TOKEN / a file.
 *
 * Design note
 * -----------
 * Owns: storing, loading and clearing the access token for a hub endpoint in the Secret Service
 * (libsecret: GNOME Keyring, KWallet, KeePassXC ...) under the schema
 * "io.github.whittle.Whittle.Token" with the attribute "endpoint" (the URL without a trailing
 * slash), and the fallbacks huggingface_hub uses: the HF_TOKEN variable and the token file
 * ($HF_TOKEN_PATH, else $HF_HOME/token).
 * Promises:
 *  - Load order: Secret Service, then HF_TOKEN, then the token file. Every fallback is
 *    reported in plain words (wh_hub_token_info.notice) so the user knows where the token
 *    came from and why; the token itself is never logged, printed or put in a message.
 *  - No Secret Service reachable (no session bus, no keyring daemon) is not an error: it is
 *    detected without starting anything (no D-Bus autolaunch) and reported as a notice.
 *  - The token file is written with mode 0600 to a temporary name in the same folder, then
 *    renamed. Token copies are wiped before they are freed.
 *  - Blocking functions; call them from a worker thread in the GUI. Thread-safe.
 * Does not: send the token anywhere (wh_hub does, to its own host only), or check it with the
 * hub.
 */
#pragma once

#include <gio/gio.h>
#include "hub/hub.h"

G_BEGIN_DECLS

typedef enum {
  WH_HUB_TOKEN_FROM_NONE,
  WH_HUB_TOKEN_FROM_KEYRING, /* the Secret Service */
  WH_HUB_TOKEN_FROM_ENV,     /* HF_TOKEN */
  WH_HUB_TOKEN_FROM_FILE,    /* $HF_TOKEN_PATH or $HF_HOME/token */
} wh_hub_token_source;

/* "none", "keyring", "env", "file". */
const char *wh_hub_token_source_to_string(wh_hub_token_source source);

typedef struct {
  char *token; /* NULL when none was found */
  wh_hub_token_source source;
  gboolean keyring_available; /* a Secret Service answered */
  char *notice;    /* why a fallback was used / where the token is, or NULL; never the token */
  char *file_path; /* the token file consulted */
} wh_hub_token_info;

/* Wipes the token and frees. NULL-safe. */
void wh_hub_token_info_free(wh_hub_token_info *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_hub_token_info, wh_hub_token_info_free)

/* TRUE when @token can be sent in an HTTP header: 1..1024 printable ASCII characters without
 * spaces. The message never quotes the token. */
gboolean wh_hub_token_validate(const char *token, GError **error);

/* TRUE when a Secret Service can be asked without starting anything: a session bus address is
 * known ($DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus) and WH_NO_SECRET_SERVICE is unset.
 * (Whether a keyring daemon answers is only known when asking.) */
gboolean wh_hub_token_keyring_reachable(void);

/* Finds the token for @endpoint (NULL: $HF_ENDPOINT or https://huggingface.co) in the order
 * above. @hf_home NULL: $HF_HOME or ~/.cache/huggingface. Never fails: returns an info with
 * token NULL when there is none. Blocking (D-Bus). */
wh_hub_token_info *wh_hub_token_load(const char *endpoint, const char *hf_home,
                                     GCancellable *cancellable);

/* Stores @token for @endpoint in the Secret Service. When none is reachable and @file_fallback
 * is TRUE, writes the token file instead (what `huggingface-cli login` does) and says so in
 * *@notice (may be NULL; newly allocated). *@stored_in (may be NULL) = where it went. Fails
 * with WH_HUB_ERROR_INVALID for a malformed token, WH_HUB_ERROR_IO when nothing could store it
 * (the message says to use HF_TOKEN instead). */
gboolean wh_hub_token_store(const char *endpoint, const char *hf_home, const char *token,
                            gboolean file_fallback, wh_hub_token_source *stored_in, char **notice,
                            GCancellable *cancellable, GError **error);

/* Removes the token of @endpoint from the Secret Service and, when @also_file, the token file.
 * *@notice (may be NULL) says what was removed. TRUE when nothing is left stored (also when
 * there was nothing); FALSE with WH_HUB_ERROR_IO when a removal failed. HF_TOKEN cannot be
 * cleared from here: the notice says so when it is set. */
gboolean wh_hub_token_clear(const char *endpoint, const char *hf_home, gboolean also_file,
                            char **notice, GCancellable *cancellable, GError **error);

/* For front ends: when the Secret Service holds a token for @hub's endpoint, hands it to
 * @hub (wh_hub_set_token) and returns WH_HUB_TOKEN_FROM_KEYRING; otherwise keeps the token
 * wh_hub_new() found and returns ENV when HF_TOKEN is set, FILE for any other token (the
 * token file, or one given in wh_hub_config), NONE when there is none. Blocking (D-Bus). */
wh_hub_token_source wh_hub_use_stored_token(wh_hub *hub, GCancellable *cancellable);

G_END_DECLS
