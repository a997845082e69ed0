/* cli-devices.c — `whittle-cli devices`: the compute devices of this machine and their memory.
 */
#include "config.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "backend/devices.h"
#include "cli-util.h"
#include "hub/hub.h"

static int run_devices(int argc, char **argv);

const wh_cli_command wh_cli_command_devices = {
    .name = "devices",
    .summary = "List the CPU and GPU devices with their memory",
    .usage = "[--json]",
    .description = "Lists the CPU (system RAM), Vulkan devices and CUDA devices with their kind\n"
                   "and total and free memory. The names work with --device. --json prints\n"
                   "{\"devices\": [{\"name\", \"api\", \"index\", \"kind\", \"type\", \"total\",\n"
                   "\"free\", \"free_known\", \"unified\"}]}.",
    .run = run_devices,
};

static int
run_devices(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_devices;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  wh_device_list *list = wh_devices_enumerate();
  if (json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "devices");
    json_builder_begin_array(b);
    for (guint i = 0; i < list->n; i++) {
      const wh_device *d = &list->devices[i];
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "name");
      json_builder_add_string_value(b, d->name);
      json_builder_set_member_name(b, "api");
      json_builder_add_string_value(b, wh_device_api_name(d->api));
      json_builder_set_member_name(b, "index");
      json_builder_add_int_value(b, d->index);
      json_builder_set_member_name(b, "kind");
      json_builder_add_string_value(b, wh_device_kind_json(d->kind));
      json_builder_set_member_name(b, "type");
      json_builder_add_string_value(b, wh_device_kind_describe(d->kind));
      json_builder_set_member_name(b, "total");
      json_builder_add_int_value(b, (gint64)d->total);
      json_builder_set_member_name(b, "free");
      json_builder_add_int_value(b, (gint64)d->free);
      json_builder_set_member_name(b, "free_known");
      json_builder_add_boolean_value(b, d->free_known);
      json_builder_set_member_name(b, "unified");
      json_builder_add_boolean_value(b, d->unified);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    wh_cli_print_json_builder(b);
  } else {
    printf("%-10s %-40s %-24s %10s %10s  %s\n", "ID", "NAME", "KIND", "TOTAL", "FREE", "MEMORY");
    for (guint i = 0; i < list->n; i++) {
      const wh_device *d = &list->devices[i];
      g_autofree char *id = d->api == WH_DEVICE_API_HOST
                                ? g_strdup("cpu")
                                : g_strdup_printf("%s:%u", wh_device_api_name(d->api), d->index);
      g_autofree char *t = wh_hub_format_size(d->total);
      g_autofree char *f = wh_hub_format_size(d->free);
      printf("%-10s %-40.40s %-24s %10s %10s  %s%s\n", id, d->name,
             wh_device_kind_describe(d->kind), t, d->free_known ? f : "?",
             d->api == WH_DEVICE_API_HOST ? "system RAM"
             : d->unified                 ? "shared with the CPU (unified)"
                                          : "own",
             d->free_known || d->api == WH_DEVICE_API_HOST ? "" : " (no memory budget)");
    }
    if (list->n == 1)
      printf("\nNo GPU device found: models run on the CPU.\n");
  }
  wh_device_list_free(list);
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
