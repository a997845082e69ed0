/* wh-test-util.h — helpers for the GTest suites.
 *
 * The shared oracle data lives in ../shared beside the source tree; tests
 * find it with wh_test_shared_path() and skip (with a message naming the
 * missing path) when it is not there.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Returns a newly allocated absolute path of @relative inside the shared
 * test data folder ($WH_SHARED_DIR, else ../shared of the source root). */
char *wh_test_shared_path(const char *relative);

/* Like wh_test_shared_path(), but when the file does not exist marks the
 * current test skipped and returns NULL: `if (!path) return;`. */
char *wh_test_shared_file_or_skip(const char *relative);

/* A new temporary directory for the test, removed by wh_test_rmdir_r(). */
char *wh_test_make_tmpdir(void);
void wh_test_rmdir_r(const char *path);

G_END_DECLS
