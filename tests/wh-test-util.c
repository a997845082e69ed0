#include "config.h"

#include "wh-test-util.h"

#include <glib/gstdio.h>
#include <gio/gio.h>

char *
wh_test_shared_path(const char *relative)
{
  const char *dir = g_getenv("WH_SHARED_DIR");
  if (!dir || !*dir)
    dir = WH_SHARED_DIR;
  return g_build_filename(dir, relative, NULL);
}

char *
wh_test_shared_file_or_skip(const char *relative)
{
  char *path = wh_test_shared_path(relative);
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_autofree char *msg = g_strdup_printf("shared test data missing: %s", path);
    g_test_skip(msg);
    g_free(path);
    return NULL;
  }
  return path;
}

char *
wh_test_make_tmpdir(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("whittle-test-XXXXXX", &error);
  g_assert_no_error(error);
  return dir;
}

static void
rm_r(GFile *file)
{
  g_autoptr(GFileEnumerator) en = g_file_enumerate_children(
      file, G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE,
      G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  if (en) {
    GFileInfo *info;
    while ((info = g_file_enumerator_next_file(en, NULL, NULL))) {
      g_autoptr(GFile) child = g_file_get_child(file, g_file_info_get_name(info));
      if (g_file_info_get_file_type(info) == G_FILE_TYPE_DIRECTORY)
        rm_r(child);
      else
        g_file_delete(child, NULL, NULL);
      g_object_unref(info);
    }
  }
  g_file_delete(file, NULL, NULL);
}

void
wh_test_rmdir_r(const char *path)
{
  if (!path)
    return;
  g_autoptr(GFile) file = g_file_new_for_path(path);
  rm_r(file);
}
