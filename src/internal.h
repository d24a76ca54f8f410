/*
 * Everything internal, for the white-box tests (tests/durability, the
 * fuzzers): the library's own files include only the headers of their
 * layer or below (base.h lists the layers).
 */
#ifndef DSKVS_INTERNAL_H
#define DSKVS_INTERNAL_H

#include "store.h"

#endif
