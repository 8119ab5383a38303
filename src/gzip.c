/*
 * A gzip stream writer (RFC 1952 around RFC 1951 DEFLATE) to a file
 * descriptor, for heap profiles: Go writes them with gzip.BestSpeed and so
 * does this, in spirit: greedy LZ77 over a 32 KiB window with 4-byte hash
 * chains cut short (at most MAX_CHAIN candidates, stop at NICE_LEN), no lazy
 * matching. Each block of input (about 96 KiB) is emitted as whichever of a
 * stored, fixed-Huffman or dynamic-Huffman block is smallest.
 *
 * Invariants of a writer (single-threaded: it belongs to its caller; no
 * shared state, no lock):
 *   - buf[0, fill) is input; buf[0, pos) has been turned into tokens and
 *     emitted, except that pos may be below fill only by what a round left
 *     as lookahead; buf[pos - WSIZE, pos) (clipped at 0) is the window.
 *   - head[h] and prev[p & WMASK] hold buffer positions + 1 (0: none). A
 *     chain only goes back in position: a link that does not is stale and
 *     ends the walk. Sliding the buffer left by d subtracts d from every
 *     entry, clipping at 0.
 *   - Every whole byte of the bit accumulator is written to out[] before
 *     the accumulator can overflow; out[] goes to the fd when nearly full.
 *   - err != 0: a write failed; every later call fails with that errno.
 * Memory is one mmapped block (sys_alloc), never the GC heap, so a writer
 * may run inside the allocator or while the heap is being profiled.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

enum {
    WSIZE = 32768, /* DEFLATE's window */
    WMASK = WSIZE - 1,
    MIN_MATCH = 4, /* what the 4-byte hash can find */
    MAX_MATCH = 258,
    LOOKAHEAD = MAX_MATCH + MIN_MATCH, /* kept unprocessed between rounds */
    BUFSZ = 128 * 1024,
    HASH_BITS = 15,
    HASH_SIZE = 1 << HASH_BITS,
    MAX_CHAIN = 8, /* candidates examined per position */
    NICE_LEN = 64, /* a match this long ends the search */
    OUTSZ = 64 * 1024,
    NLITLEN = 286, /* literal/length symbols that may be used */
    NDIST = 30,
    NCLEN = 19,
    MAX_BITS = 15,
    MAX_CL_BITS = 7,
    STORED_MAX = 65535,
};

/* RFC 1951 3.2.5: lengths and distances. */
static const uint16_t len_base[29] = {
    3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
                                      1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                      4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
    1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
    33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0,  0,  1,  1,  2,  2,  3,  3,
                                       4, 4, 5,  5,  6,  6,  7,  7,  8,  8,
                                       9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
/* RFC 1951 3.2.7: the order code-length code lengths are sent in. */
static const uint8_t clen_order[NCLEN] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                          11, 4,  12, 3, 13, 2, 14, 1, 15};

/* A Huffman code: bit length and bit-reversed code of each symbol (DEFLATE
 * sends codes most significant bit first into an LSB-first stream). */
typedef struct huff {
    uint8_t len[NLITLEN];
    uint16_t code[NLITLEN];
} huff;

struct gzip_writer {
    int fd;
    int err;
    uint32_t crc;
    uint32_t isize; /* input length mod 2^32 */
    size_t fill, pos;
    uint64_t bits; /* pending output bits, LSB first */
    unsigned nbits;
    size_t outlen;
    size_t ntok;
    uint32_t freq_ll[NLITLEN], freq_d[NDIST];
    uint64_t extra_bits;  /* extra bits of the pending tokens */
    uint8_t len_sym[256]; /* match length - 3 -> length code - 257 */
    uint32_t crc_table[256];
    huff fixed_ll, fixed_d;
    uint32_t head[HASH_SIZE];
    uint32_t prev[WSIZE];
    /* literal: the byte; match: distance << 16 | (length - 3) */
    uint32_t tok[BUFSZ];
    uint8_t buf[BUFSZ];
    uint8_t out[OUTSZ];
};

/* ---- Output ----------------------------------------------------------------
 */

static void flush_out(gzip_writer *z)
{
    if (z->err == 0 && z->outlen > 0 &&
        sys_write_all(z->fd, z->out, z->outlen) != 0)
        z->err = errno != 0 ? errno : EIO;
    z->outlen = 0;
}

/* Appends n <= 32 bits. */
static inline void put_bits(gzip_writer *z, uint32_t v, unsigned n)
{
    z->bits |= (uint64_t)v << z->nbits;
    z->nbits += n;
    if (z->nbits >= 32) {
        if (z->outlen > OUTSZ - 4)
            flush_out(z);
        uint32_t w = (uint32_t)z->bits;
        z->out[z->outlen++] = (uint8_t)w;
        z->out[z->outlen++] = (uint8_t)(w >> 8);
        z->out[z->outlen++] = (uint8_t)(w >> 16);
        z->out[z->outlen++] = (uint8_t)(w >> 24);
        z->bits >>= 32;
        z->nbits -= 32;
    }
}

/* Pads the bit stream to a byte boundary and moves it all to out[]. */
static void align_bits(gzip_writer *z)
{
    while (z->nbits > 0) {
        if (z->outlen == OUTSZ)
            flush_out(z);
        z->out[z->outlen++] = (uint8_t)z->bits;
        z->bits >>= 8;
        z->nbits = z->nbits >= 8 ? z->nbits - 8 : 0;
    }
    z->bits = 0;
}

static void put_bytes(gzip_writer *z, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (z->outlen == OUTSZ)
            flush_out(z);
        size_t k = OUTSZ - z->outlen < n ? OUTSZ - z->outlen : n;
        memcpy(z->out + z->outlen, p, k);
        z->outlen += k;
        p += k;
        n -= k;
    }
}

static void put_le32(gzip_writer *z, uint32_t v)
{
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                          (uint8_t)(v >> 24)};
    put_bytes(z, b, 4);
}

/* ---- Huffman codes ---------------------------------------------------------
 */

static uint16_t reverse_bits(unsigned code, unsigned len)
{
    unsigned r = 0;
    for (unsigned i = 0; i < len; i++, code >>= 1)
        r = r << 1 | (code & 1);
    return (uint16_t)r;
}

/* RFC 1951 3.2.2: canonical codes from the lengths. */
static void assign_codes(huff *h, unsigned n)
{
    unsigned count[MAX_BITS + 1] = {0}, next[MAX_BITS + 1];
    for (unsigned i = 0; i < n; i++)
        count[h->len[i]]++;
    count[0] = 0;
    unsigned code = 0;
    for (unsigned b = 1; b <= MAX_BITS; b++) {
        code = (code + count[b - 1]) << 1;
        next[b] = code;
    }
    for (unsigned i = 0; i < n; i++)
        if (h->len[i] != 0)
            h->code[i] = reverse_bits(next[h->len[i]]++, h->len[i]);
}

/* Optimal code lengths for freq[0, n) by the two-queue Huffman
 * construction; if the longest exceeds maxbits, the frequencies are halved
 * (keeping them nonzero) and the tree rebuilt: this flattens it and ends at
 * worst with a balanced tree (9 levels for 286 symbols). At least two
 * symbols get a code, so every code is complete. */
static void build_lengths(const uint32_t *freq, unsigned n, unsigned maxbits,
                          uint8_t *len)
{
    uint32_t w[2 * NLITLEN];
    uint16_t sym[NLITLEN], parent[2 * NLITLEN];
    uint8_t depth[2 * NLITLEN];
    unsigned m = 0;
    memset(len, 0, n);
    for (unsigned i = 0; i < n; i++)
        if (freq[i] != 0)
            sym[m++] = (uint16_t)i;
    if (m < 2) { /* one (or no) symbol: two 1-bit codes */
        unsigned a = m == 1 ? sym[0] : 0;
        len[a] = 1;
        len[a == 0 ? 1 : 0] = 1;
        return;
    }
    /* leaves sorted by frequency (insertion sort: n <= 286) */
    for (unsigned i = 1; i < m; i++) {
        uint16_t s = sym[i];
        unsigned j = i;
        while (j > 0 && freq[sym[j - 1]] > freq[s]) {
            sym[j] = sym[j - 1];
            j--;
        }
        sym[j] = s;
    }
    for (unsigned i = 0; i < m; i++)
        w[i] = freq[sym[i]];
    for (;;) {
        /* leaves are nodes [0, m); internal nodes [m, 2m-1) in the order
         * made, which is nondecreasing in weight: two sorted queues */
        unsigned leaf = 0, node = m, made = m;
        while (made < 2 * m - 1) {
            unsigned pick[2];
            for (int k = 0; k < 2; k++) {
                if (leaf < m && (node >= made || w[leaf] <= w[node]))
                    pick[k] = leaf++;
                else
                    pick[k] = node++;
            }
            w[made] = w[pick[0]] + w[pick[1]];
            parent[pick[0]] = parent[pick[1]] = (uint16_t)made;
            made++;
        }
        unsigned root = 2 * m - 2, maxd = 0;
        depth[root] = 0;
        for (unsigned i = root; i-- > 0;) {
            depth[i] = (uint8_t)(depth[parent[i]] + 1);
            if (i < m && depth[i] > maxd)
                maxd = depth[i];
        }
        if (maxd <= maxbits) {
            for (unsigned i = 0; i < m; i++)
                len[sym[i]] = depth[i];
            return;
        }
        for (unsigned i = 0; i < m; i++) /* still sorted */
            w[i] = (w[i] >> 1) | 1;
    }
}

static void fixed_codes(gzip_writer *z)
{
    for (unsigned i = 0; i < NLITLEN; i++)
        z->fixed_ll.len[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    assign_codes(&z->fixed_ll, NLITLEN);
    for (unsigned i = 0; i < NDIST; i++)
        z->fixed_d.len[i] = 5;
    assign_codes(&z->fixed_d, NDIST);
}

static inline unsigned dist_sym(unsigned dist)
{
    unsigned x = dist - 1;
    if (x < 4)
        return x;
    unsigned n = 31 - (unsigned)__builtin_clz(x); /* floor(log2 x) >= 2 */
    return 2 * n + ((x >> (n - 1)) & 1);
}

/* ---- Blocks ----------------------------------------------------------------
 */

static uint64_t data_bits(const gzip_writer *z, const huff *ll, const huff *d)
{
    uint64_t n = z->extra_bits;
    for (unsigned i = 0; i < NLITLEN; i++)
        n += (uint64_t)z->freq_ll[i] * ll->len[i];
    for (unsigned i = 0; i < NDIST; i++)
        n += (uint64_t)z->freq_d[i] * d->len[i];
    return n;
}

/* The dynamic block header: the code lengths of both codes, run-length
 * coded (RFC 1951 3.2.7) into rle[] as symbol | extra << 5. */
typedef struct dyn_header {
    unsigned hlit, hdist, hclen, nrle;
    uint16_t rle[NLITLEN + NDIST];
    uint32_t cfreq[NCLEN];
    huff cl;
    uint64_t bits;
} dyn_header;

static void plan_header(const huff *ll, const huff *d, dyn_header *h)
{
    uint8_t lens[NLITLEN + NDIST];
    h->hlit = NLITLEN;
    while (h->hlit > 257 && ll->len[h->hlit - 1] == 0)
        h->hlit--;
    h->hdist = NDIST;
    while (h->hdist > 1 && d->len[h->hdist - 1] == 0)
        h->hdist--;
    memcpy(lens, ll->len, h->hlit);
    memcpy(lens + h->hlit, d->len, h->hdist);
    unsigned n = h->hlit + h->hdist;
    memset(h->cfreq, 0, sizeof h->cfreq);
    h->nrle = 0;
    for (unsigned i = 0; i < n;) {
        unsigned v = lens[i], run = 1;
        while (i + run < n && lens[i + run] == v)
            run++;
        i += run;
        if (v == 0) {
            while (run >= 11) {
                unsigned k = run < 138 ? run : 138;
                h->rle[h->nrle++] = (uint16_t)(18 | (k - 11) << 5);
                h->cfreq[18]++;
                run -= k;
            }
            if (run >= 3) {
                h->rle[h->nrle++] = (uint16_t)(17 | (run - 3) << 5);
                h->cfreq[17]++;
                run = 0;
            }
        } else {
            h->rle[h->nrle++] = (uint16_t)v;
            h->cfreq[v]++;
            run--;
            while (run >= 3) {
                unsigned k = run < 6 ? run : 6;
                h->rle[h->nrle++] = (uint16_t)(16 | (k - 3) << 5);
                h->cfreq[16]++;
                run -= k;
            }
        }
        for (; run > 0; run--) {
            h->rle[h->nrle++] = (uint16_t)v;
            h->cfreq[v]++;
        }
    }
    build_lengths(h->cfreq, NCLEN, MAX_CL_BITS, h->cl.len);
    assign_codes(&h->cl, NCLEN);
    h->hclen = NCLEN;
    while (h->hclen > 4 && h->cl.len[clen_order[h->hclen - 1]] == 0)
        h->hclen--;
    h->bits = 5 + 5 + 4 + 3 * (uint64_t)h->hclen;
    for (unsigned s = 0; s < NCLEN; s++)
        h->bits += (uint64_t)h->cfreq[s] * h->cl.len[s];
    h->bits += 2 * (uint64_t)h->cfreq[16] + 3 * (uint64_t)h->cfreq[17] +
               7 * (uint64_t)h->cfreq[18];
}

static void put_header(gzip_writer *z, const dyn_header *h)
{
    put_bits(z, h->hlit - 257, 5);
    put_bits(z, h->hdist - 1, 5);
    put_bits(z, h->hclen - 4, 4);
    for (unsigned i = 0; i < h->hclen; i++)
        put_bits(z, h->cl.len[clen_order[i]], 3);
    for (unsigned i = 0; i < h->nrle; i++) {
        unsigned s = h->rle[i] & 31, x = h->rle[i] >> 5;
        put_bits(z, h->cl.code[s], h->cl.len[s]);
        if (s == 16)
            put_bits(z, x, 2);
        else if (s == 17)
            put_bits(z, x, 3);
        else if (s == 18)
            put_bits(z, x, 7);
    }
}

static void put_tokens(gzip_writer *z, const huff *ll, const huff *d)
{
    for (size_t i = 0; i < z->ntok; i++) {
        uint32_t t = z->tok[i];
        unsigned dist = t >> 16;
        if (dist == 0) {
            put_bits(z, ll->code[t], ll->len[t]);
            continue;
        }
        unsigned l = t & 0xffff, ls = z->len_sym[l], ds = dist_sym(dist);
        put_bits(z, ll->code[257 + ls], ll->len[257 + ls]);
        if (len_extra[ls] != 0)
            put_bits(z, l + 3 - len_base[ls], len_extra[ls]);
        put_bits(z, d->code[ds], d->len[ds]);
        if (dist_extra[ds] != 0)
            put_bits(z, dist - dist_base[ds], dist_extra[ds]);
    }
    put_bits(z, ll->code[256], ll->len[256]);
}

static void put_stored(gzip_writer *z, const uint8_t *p, size_t n, bool final)
{
    do {
        size_t k = n < STORED_MAX ? n : STORED_MAX;
        put_bits(z, (final && k == n) ? 1 : 0, 3); /* BTYPE 00 */
        align_bits(z);
        const uint8_t hdr[4] = {(uint8_t)k, (uint8_t)(k >> 8), (uint8_t)~k,
                                (uint8_t)(~k >> 8)};
        put_bytes(z, hdr, 4);
        put_bytes(z, p, k);
        p += k;
        n -= k;
    } while (n > 0);
}

/* Emits the pending tokens, which encode buf[start, end), as the smallest
 * of the three block kinds; resets the token state. */
static void flush_block(gzip_writer *z, size_t start, size_t end, bool final)
{
    huff ll = {{0}, {0}}, d = {{0}, {0}};
    dyn_header h;
    z->freq_ll[256] = 1;
    build_lengths(z->freq_ll, NLITLEN, MAX_BITS, ll.len);
    assign_codes(&ll, NLITLEN);
    build_lengths(z->freq_d, NDIST, MAX_BITS, d.len);
    assign_codes(&d, NDIST);
    plan_header(&ll, &d, &h);
    uint64_t dyn = 3 + h.bits + data_bits(z, &ll, &d);
    uint64_t fix = 3 + data_bits(z, &z->fixed_ll, &z->fixed_d);
    size_t n = end - start;
    /* header bits + padding (at most 7) + LEN/NLEN per stored block */
    uint64_t stored = ((n + STORED_MAX - 1) / STORED_MAX + (n == 0)) *
                          (uint64_t)(3 + 7 + 32) +
                      8 * (uint64_t)n;
    if (stored < fix && stored < dyn) {
        put_stored(z, z->buf + start, n, final);
    } else if (fix <= dyn) {
        put_bits(z, final ? 3 : 2, 3); /* BTYPE 01 */
        put_tokens(z, &z->fixed_ll, &z->fixed_d);
    } else {
        put_bits(z, final ? 5 : 4, 3); /* BTYPE 10 */
        put_header(z, &h);
        put_tokens(z, &ll, &d);
    }
    z->ntok = 0;
    z->extra_bits = 0;
    memset(z->freq_ll, 0, sizeof z->freq_ll);
    memset(z->freq_d, 0, sizeof z->freq_d);
}

/* ---- LZ77 ------------------------------------------------------------------
 */

static inline uint32_t hash4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static inline unsigned match_len(const uint8_t *a, const uint8_t *b,
                                 unsigned max)
{
    unsigned n = 0;
    while (n + 8 <= max) {
        uint64_t x, y;
        memcpy(&x, a + n, 8);
        memcpy(&y, b + n, 8);
        if (x != y)
            return n + (unsigned)__builtin_ctzll(x ^ y) / 8;
        n += 8;
    }
    while (n < max && a[n] == b[n])
        n++;
    return n;
}

static inline void insert(gzip_writer *z, size_t p)
{
    uint32_t h = hash4(z->buf + p);
    z->prev[p & WMASK] = z->head[h];
    z->head[h] = (uint32_t)p + 1;
}

/* Tokens for buf[pos, limit) (a match may run on to fill), then a block. */
static void deflate_round(gzip_writer *z, size_t limit, bool final)
{
    size_t p = z->pos, start = z->pos, fill = z->fill;
    while (p < limit) {
        unsigned best = 0, bestdist = 0;
        if (p + MIN_MATCH <= fill) {
            uint32_t h = hash4(z->buf + p);
            uint32_t cand = z->head[h];
            z->prev[p & WMASK] = cand;
            z->head[h] = (uint32_t)p + 1;
            unsigned max =
                fill - p < MAX_MATCH ? (unsigned)(fill - p) : MAX_MATCH;
            for (int chain = MAX_CHAIN; cand != 0 && chain > 0; chain--) {
                size_t c = cand - 1;
                if (p - c > WSIZE)
                    break;
                if (z->buf[c + best] == z->buf[p + best]) {
                    unsigned n = match_len(z->buf + c, z->buf + p, max);
                    if (n > best) {
                        best = n;
                        bestdist = (unsigned)(p - c);
                        if (n >= NICE_LEN || n == max)
                            break;
                    }
                }
                uint32_t next = z->prev[c & WMASK];
                if (next >= cand)
                    break; /* stale link */
                cand = next;
            }
        }
        if (best >= MIN_MATCH) {
            unsigned ls = z->len_sym[best - 3];
            z->tok[z->ntok++] = (uint32_t)bestdist << 16 | (best - 3);
            z->freq_ll[257 + ls]++;
            unsigned ds = dist_sym(bestdist);
            z->freq_d[ds]++;
            z->extra_bits += len_extra[ls] + dist_extra[ds];
            for (size_t q = p + 1; q < p + best && q + MIN_MATCH <= fill; q++)
                insert(z, q);
            p += best;
        } else {
            z->tok[z->ntok++] = z->buf[p];
            z->freq_ll[z->buf[p]]++;
            p++;
        }
    }
    z->pos = p;
    flush_block(z, start, p, final);
}

/* Keeps the last WSIZE bytes before pos (and everything after it). */
static void slide(gzip_writer *z)
{
    if (z->pos <= WSIZE)
        return;
    size_t d = z->pos - WSIZE;
    memmove(z->buf, z->buf + d, z->fill - d);
    z->fill -= d;
    z->pos -= d;
    for (size_t i = 0; i < HASH_SIZE; i++)
        z->head[i] = z->head[i] > d ? z->head[i] - (uint32_t)d : 0;
    for (size_t i = 0; i < WSIZE; i++)
        z->prev[i] = z->prev[i] > d ? z->prev[i] - (uint32_t)d : 0;
}

/* ---- CRC-32 (RFC 1952 8: reflected polynomial 0xedb88320) ----------------
 */

static void crc_init(gzip_writer *z)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        z->crc_table[i] = c;
    }
}

static void crc_update(gzip_writer *z, const uint8_t *p, size_t n)
{
    uint32_t c = ~z->crc;
    for (size_t i = 0; i < n; i++)
        c = z->crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    z->crc = ~c;
}

/* ---- API -------------------------------------------------------------------
 */

gzip_writer *gzip_open(int fd)
{
    gzip_writer *z = sys_alloc(sizeof *z);
    if (z == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    z->fd = fd;
    crc_init(z);
    fixed_codes(z);
    /* length 258 has its own code (285); 284's range would include it */
    for (unsigned s = 0; s < 28; s++)
        for (unsigned l = len_base[s];
             l < len_base[s] + (1u << len_extra[s]) && l < 258; l++)
            z->len_sym[l - 3] = (uint8_t)s;
    z->len_sym[258 - 3] = 28;
    /* ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=4 (fastest) OS=3 (Unix) */
    static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3};
    put_bytes(z, header, sizeof header);
    return z;
}

int gzip_write(gzip_writer *z, const void *p, size_t n)
{
    if (z == NULL || (p == NULL && n > 0))
        gm_throw("gzip_write: no writer or no data");
    const uint8_t *s = p;
    while (n > 0 && z->err == 0) {
        size_t k = BUFSZ - z->fill < n ? BUFSZ - z->fill : n;
        memcpy(z->buf + z->fill, s, k);
        crc_update(z, s, k);
        z->isize += (uint32_t)k;
        z->fill += k;
        s += k;
        n -= k;
        if (z->fill == BUFSZ) {
            deflate_round(z, BUFSZ - LOOKAHEAD, false);
            slide(z);
        }
    }
    if (z->err != 0) {
        errno = z->err;
        return -1;
    }
    return 0;
}

int gzip_close(gzip_writer *z)
{
    if (z == NULL)
        gm_throw("gzip_close: no writer");
    if (z->err == 0) {
        deflate_round(z, z->fill, true);
        align_bits(z);
        put_le32(z, z->crc);
        put_le32(z, z->isize);
        flush_out(z);
    }
    int err = z->err;
    sys_free(z, sizeof *z);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
