/* cli-template.c — `whittle-cli template`: render chat-template test cases.
 *
 * Renders every conversation of a cases.json file with a Jinja chat template and prints
 * the results each followed by the file's separator, byte for byte the layout of the
 * shared .expected files, so `cmp` can check them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "chat/chat.h"
#include "cli-util.h"

static int run_template(int argc, char **argv);

const wh_cli_command wh_cli_command_template = {
    .name = "template",
    .summary = "Render chat-template test cases (Jinja) to text",
    .usage = "-t FILE.jinja -c CASES.json [--now ISO8601]",
    .description =
        "Renders each conversation of CASES.json (an object with \"cases\": [{\"messages\", "
        "\"add_generation_prompt\"}], plus optional \"bos_token\", \"eos_token\", \"now\", "
        "\"separator\") with the template and prints every result followed by the separator.\n"
        "A template that rejects the system role gets the system text folded into the first "
        "user message. --now fixes the date strftime_now() sees (default: the file's \"now\", "
        "else the current time).",
    .run = run_template,
};

static int
run_template(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_template;
  g_autofree char *tmpl_path = NULL, *cases_path = NULL, *now_s = NULL;
  GOptionEntry entries[] = {
      {"template", 't', 0, G_OPTION_ARG_FILENAME, &tmpl_path, "Jinja template file", "FILE"},
      {"cases", 'c', 0, G_OPTION_ARG_FILENAME, &cases_path, "cases.json file", "FILE"},
      {"now", 0, 0, G_OPTION_ARG_STRING, &now_s, "Time for strftime_now (ISO 8601)", "TIME"},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
  if (!tmpl_path || !cases_path)
    return wh_cli_usage_error(cmd, "both -t FILE.jinja and -c CASES.json are required");
  gint64 now = -1;
  if (now_s) {
    now = wh_chat_parse_time(now_s);
    if (now < 0)
      return wh_cli_usage_error(cmd,
                                "--now: '%s' is not an ISO 8601 time "
                                "(e.g. 2025-11-22T08:00:00Z)",
                                now_s);
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *src = NULL, *cases = NULL;
  gsize cases_len = 0;
  if (!g_file_get_contents(tmpl_path, &src, NULL, &error) ||
      !g_file_get_contents(cases_path, &cases, &cases_len, &error))
    return wh_cli_fail(cmd, error);
  g_autoptr(wh_chat_template) t = wh_chat_template_new(src, &error);
  if (!t) {
    g_prefix_error(&error, "%s: ", tmpl_path);
    return wh_cli_fail(cmd, error);
  }
  g_autofree char *out = wh_chat_template_render_cases(t, cases, (gssize)cases_len, now, &error);
  if (!out) {
    g_prefix_error(&error, "%s: ", tmpl_path);
    return wh_cli_fail(cmd, error);
  }
  fwrite(out, 1, strlen(out), stdout);
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
