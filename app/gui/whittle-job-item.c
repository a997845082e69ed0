/* whittle-job-item.c — see whittle-job-item.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-job-item.h"

struct _WhittleJobItem {
  GObject parent_instance;

  wh_job *job;
  wh_job_state state;
  double fraction;
  char *progress_text;
  char *error_message;
  gint64 last_progress_us; /* when fraction / progress text were last published */
  guint flush_source;      /* publishes progress that arrived too soon after the last */
};

/* Progress (fraction, text) is published at most this often: every published change
 * relayouts the job's row and, with the popover open, repositions the popover, which costs
 * X round trips per frame. State changes are always published at once. */
#define PROGRESS_INTERVAL_US (200 * 1000)

G_DEFINE_FINAL_TYPE(WhittleJobItem, whittle_job_item, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_TITLE,
  PROP_STATE,
  PROP_FINISHED,
  PROP_FRACTION,
  PROP_PROGRESS_TEXT,
  PROP_ERROR_MESSAGE,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

static void
whittle_job_item_finalize(GObject *object)
{
  WhittleJobItem *self = WHITTLE_JOB_ITEM(object);

  g_clear_handle_id(&self->flush_source, g_source_remove);
  g_clear_pointer(&self->job, wh_job_unref);
  g_free(self->progress_text);
  g_free(self->error_message);
  G_OBJECT_CLASS(whittle_job_item_parent_class)->finalize(object);
}

static void
whittle_job_item_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  WhittleJobItem *self = WHITTLE_JOB_ITEM(object);

  switch (prop_id) {
  case PROP_TITLE:
    g_value_set_string(value, whittle_job_item_get_title(self));
    break;
  case PROP_STATE:
    g_value_set_int(value, self->state);
    break;
  case PROP_FINISHED:
    g_value_set_boolean(value, whittle_job_item_get_finished(self));
    break;
  case PROP_FRACTION:
    g_value_set_double(value, self->fraction);
    break;
  case PROP_PROGRESS_TEXT:
    g_value_set_string(value, self->progress_text);
    break;
  case PROP_ERROR_MESSAGE:
    g_value_set_string(value, self->error_message);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
whittle_job_item_class_init(WhittleJobItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);

  object_class->finalize = whittle_job_item_finalize;
  object_class->get_property = whittle_job_item_get_property;

  props[PROP_TITLE] =
      g_param_spec_string("title", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_STATE] = g_param_spec_int("state", NULL, NULL, WH_JOB_QUEUED, WH_JOB_CANCELLED,
                                       WH_JOB_QUEUED, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_FINISHED] = g_param_spec_boolean("finished", NULL, NULL, FALSE,
                                              G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_FRACTION] = g_param_spec_double("fraction", NULL, NULL, 0.0, 1.0, 0.0,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_PROGRESS_TEXT] = g_param_spec_string("progress-text", NULL, NULL, NULL,
                                                  G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_ERROR_MESSAGE] = g_param_spec_string("error-message", NULL, NULL, NULL,
                                                  G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
whittle_job_item_init(WhittleJobItem *self)
{
  self->state = WH_JOB_QUEUED;
}

WhittleJobItem *
whittle_job_item_new(wh_job *job)
{
  g_return_val_if_fail(job != NULL, NULL);

  WhittleJobItem *self = g_object_new(WHITTLE_TYPE_JOB_ITEM, NULL);
  self->job = wh_job_ref(job);
  whittle_job_item_update(self);
  return self;
}

/* Replaces *field with @value (taking it) and notifies @prop when it changed. */
static void
set_string(WhittleJobItem *self, char **field, char *value, guint prop)
{
  if (g_strcmp0(*field, value) == 0) {
    g_free(value);
    return;
  }
  g_free(*field);
  *field = value;
  g_object_notify_by_pspec(G_OBJECT(self), props[prop]);
}

static char *
format_progress(WhittleJobItem *self, const wh_job_progress *p)
{
  switch (p->state) {
  case WH_JOB_QUEUED:
    return g_strdup(_("Waiting for its turn"));
  case WH_JOB_RUNNING: {
    char *text = wh_job_progress_format(p, wh_job_kind_is_io(wh_job_get_kind(self->job)));
    if (text[0] == '\0') {
      g_free(text);
      return g_strdup(_("Starting…"));
    }
    return text;
  }
  case WH_JOB_SUCCEEDED:
    if (p->elapsed_seconds >= 1.0)
      /* Translators: %.0f is a number of seconds */
      return g_strdup_printf(_("Finished in %.0f s"), p->elapsed_seconds);
    return g_strdup(_("Finished"));
  case WH_JOB_FAILED:
    return g_strdup(_("Failed"));
  case WH_JOB_CANCELLED:
    return g_strdup(_("Cancelled"));
  }
  return g_strdup("");
}

static gboolean
flush_progress(gpointer data)
{
  WhittleJobItem *self = data;
  self->flush_source = 0;
  whittle_job_item_update(self);
  return G_SOURCE_REMOVE;
}

void
whittle_job_item_update(WhittleJobItem *self)
{
  g_return_if_fail(WHITTLE_IS_JOB_ITEM(self));

  /* Too soon after the last progress and no change of state: publish later, once. */
  gint64 now = g_get_monotonic_time();
  if (wh_job_get_state(self->job) == self->state && self->last_progress_us != 0 &&
      now - self->last_progress_us < PROGRESS_INTERVAL_US) {
    if (self->flush_source == 0) {
      guint ms = (guint)((PROGRESS_INTERVAL_US - (now - self->last_progress_us)) / 1000) + 1;
      self->flush_source = g_timeout_add(ms, flush_progress, self);
    }
    return;
  }
  g_clear_handle_id(&self->flush_source, g_source_remove);
  self->last_progress_us = now;

  wh_job_progress p;
  wh_job_get_progress(self->job, &p);
  /* The getters answer from one snapshot inside a notification; outside of
   * one (first update) the state may be newer than the progress, so trust
   * the explicit getter for the state. */
  wh_job_state state = wh_job_get_state(self->job);
  p.state = state;

  g_object_freeze_notify(G_OBJECT(self));

  if (state != self->state) {
    gboolean was_finished = whittle_job_item_get_finished(self);
    self->state = state;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_STATE]);
    if (was_finished != whittle_job_item_get_finished(self))
      g_object_notify_by_pspec(G_OBJECT(self), props[PROP_FINISHED]);
  }

  double fraction = p.fraction;
  if (state == WH_JOB_SUCCEEDED)
    fraction = 1.0;
  else if (fraction < 0.0 && p.total > 0)
    fraction = (double)p.done / (double)p.total;
  fraction = CLAMP(fraction, 0.0, 1.0);
  if (fraction != self->fraction) {
    self->fraction = fraction;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_FRACTION]);
  }

  set_string(self, &self->progress_text, format_progress(self, &p), PROP_PROGRESS_TEXT);

  const GError *error = wh_job_get_error(self->job);
  char *message = NULL;
  if (state == WH_JOB_FAILED)
    message = g_strdup(error && error->message && error->message[0]
                           ? error->message
                           : _("The job stopped without saying why."));
  set_string(self, &self->error_message, message, PROP_ERROR_MESSAGE);

  g_object_thaw_notify(G_OBJECT(self));
}

wh_job *
whittle_job_item_get_job(WhittleJobItem *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(self), NULL);
  return self->job;
}

const char *
whittle_job_item_get_title(WhittleJobItem *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(self), NULL);
  return wh_job_get_title(self->job);
}

wh_job_state
whittle_job_item_get_state(WhittleJobItem *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(self), WH_JOB_QUEUED);
  return self->state;
}

gboolean
whittle_job_item_get_finished(WhittleJobItem *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(self), FALSE);
  return self->state == WH_JOB_SUCCEEDED || self->state == WH_JOB_FAILED ||
         self->state == WH_JOB_CANCELLED;
}

double
whittle_job_item_get_fraction(WhittleJobItem *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(self), 0.0);
  return self->fraction;
}

const char *
whittle_job_item_get_progress_text(WhittleJobItem *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(self), NULL);
  return self->progress_text;
}

const char *
whittle_job_item_get_error_message(WhittleJobItem *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(self), NULL);
  return self->error_message;
}

void
whittle_job_item_cancel(WhittleJobItem *self)
{
  g_return_if_fail(WHITTLE_IS_JOB_ITEM(self));
  wh_job_cancel(self->job);
}
