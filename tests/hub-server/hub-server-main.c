/* hub-server-main.c — the local hub look-alike as a program, for the CLI tests and the
 * benchmark: hub-server ROOT [--port-file FILE] [--rate N] [--fault NAME=N]... */
#include "config.h"

#include "hub-server.h"

int
main(int argc, char **argv)
{
  return wh_test_hub_serve_main(argc, argv);
}
