/* whittle-spinner.h — a busy indicator that turns without relayouts.
 *
 * Design note
 * -----------
 * GtkSpinner turns through a CSS animation: every frame restyles it, and GTK restyles in the
 * frame clock's layout phase, so the whole window lays out 60 times a second. With a popover
 * open, GTK 4.8's X11 backend then places the popover again in each of those frames (monitor,
 * work area and pointer look-ups: about 20 blocking X round trips a frame, measured by
 * tests/bench/bench-mainloop.sh), and every round trip is a chance to wait for a busy CPU.
 * WhittleSpinner draws the same themed icon (process-working-symbolic, one turn a second) rotated
 * by a frame-clock tick that only queues a redraw: no style change, no layout.
 * With gtk-enable-animations off it shows the icon still.
 * Owns: the icon it draws. Accessible role: progress bar (as GtkSpinner).
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_SPINNER (whittle_spinner_get_type())
G_DECLARE_FINAL_TYPE(WhittleSpinner, whittle_spinner, WHITTLE, SPINNER, GtkWidget)

GtkWidget *whittle_spinner_new(void);
/* Shown and turning while @spinning; draws nothing otherwise (it keeps its size). */
void whittle_spinner_set_spinning(WhittleSpinner *self, gboolean spinning);
gboolean whittle_spinner_get_spinning(WhittleSpinner *self);

G_END_DECLS
