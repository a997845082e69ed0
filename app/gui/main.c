/* main.c — entry point of the whittle GUI.
 *
 * Sets up gettext, refuses politely when there is no display (instead of a
 * GTK warning and a bare exit), then hands over to WhittleApplication.
 */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "whittle-application.h"

/* --help and --version are answered by GApplication without a display. */
static gboolean
wants_local_answer(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
        strncmp(argv[i], "--help-", 7) == 0 || strcmp(argv[i], "--version") == 0)
      return TRUE;
  }
  return FALSE;
}

int
main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  textdomain(GETTEXT_PACKAGE);

  g_autoptr(GError) error = NULL;
  if (!wants_local_answer(argc, argv) && !whittle_application_check_schema(&error)) {
    fprintf(stderr, "whittle: %s\n", error->message);
    return 1;
  }

  if (!wants_local_answer(argc, argv) && !gtk_init_check()) {
    fprintf(stderr, "%s\n",
            _("whittle: cannot open a display — run it inside a graphical session, "
              "or use whittle-cli"));
    return 1;
  }

  g_autoptr(WhittleApplication) app = whittle_application_new(G_APPLICATION_DEFAULT_FLAGS);
  return g_application_run(G_APPLICATION(app), argc, argv);
}
