/*
 * Size classes: Go's 68-class table (class 0 means "large object"), generated
 * into sizeclasses.c by tools/mksizeclasses.c. See docs/design.md.
 */
#ifndef GM_SIZECLASSES_H
#define GM_SIZECLASSES_H

#include <stddef.h>
#include <stdint.h>

enum {
    NUM_SIZE_CLASSES = 68,
    MAX_SMALL_SIZE = 32768,
    SMALL_SIZE_DIV = 8,
    SMALL_SIZE_MAX = 1024,
    LARGE_SIZE_DIV = 128,
    TINY_SIZE = 16,
    TINY_SIZE_CLASS = 2,
};

extern const uint16_t gm_class_to_size[NUM_SIZE_CLASSES];
extern const uint8_t gm_class_to_npages[NUM_SIZE_CLASSES];
extern const uint32_t gm_class_to_divmagic[NUM_SIZE_CLASSES];
extern const uint8_t gm_size_to_class8[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1];
extern const uint8_t
    gm_size_to_class128[(MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1];

/* The size class of a small request (1 <= size <= MAX_SMALL_SIZE). */
static inline unsigned size_to_class(size_t size)
{
    if (size <= SMALL_SIZE_MAX)
        return gm_size_to_class8[(size + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    return gm_size_to_class128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) /
                               LARGE_SIZE_DIV];
}

#endif
