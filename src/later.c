/*
 * Parts of the public API whose real implementation belongs to later
 * milestones (docs/design.md, "Status"). Each is either a correct but
 * simpler form of the final behaviour, or a fatal error that says it is not
 * available yet: never a silent no-op that pretends to work.
 *
 *  - unique: fatal "not implemented yet".
 */
#include "internal.h"

#define NOT_YET(what) gm_throw("%s is not implemented yet", what)

const void *gm_unique_make(const void *data, size_t len)
{
    (void)data;
    (void)len;
    NOT_YET("gm_unique_make");
}
