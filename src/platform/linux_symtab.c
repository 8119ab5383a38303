/*
 * Symbolization for heap profiles and leak reports: the executable
 * file-backed mappings of the process (from /proc/self/maps) with the build
 * ids of their files, and pc -> function name from each file's ELF symbol
 * tables: .symtab, which dladdr() never sees (executables are usually
 * linked without -rdynamic), and .dynsym, all a stripped library keeps.
 * Both are read when both exist; aliases at one address collapse to one
 * name (see better_alias).
 *
 * No malloc and no stdio here: this code is meant to run inside a malloc
 * replacement too. /proc/self/maps is read with the read system call into
 * a buffer, files are mapped read-only, and every piece of metadata is
 * anonymous mmap'ed memory, counted in sys_bytes. Nothing here points into
 * the gomem heap, so the collector has nothing to keep alive for us.
 *
 * Addresses: a file's symbols are kept in its own ELF virtual addresses;
 * a pc in a mapping is translated with that mapping's load bias,
 *   bias = start - offset - (p_vaddr - p_offset)
 * for the PT_LOAD segment whose file range holds the mapping's offset (the
 * kernel maps a segment at bias + p_vaddr from file offset p_offset, both
 * rounded down to a page, and the two are equal modulo the page size).
 * This is 0 for ET_EXEC executables and the load address for PIE
 * executables and shared libraries; one table serves every mapping of a
 * file, in every refresh, wherever it is loaded.
 *
 * State, all under symtab_lock, a leaf lock (nothing else is taken while it
 * is held); lookups take it too: this is not a hot path.
 *  - files[0..nfiles): one record per file (device, inode, path) ever seen
 *    in an executable mapping. Records are never dropped and their files
 *    stay mapped for the life of the process, so the names a lookup returns
 *    (pointers into a file's string table) and the path and build-id
 *    strings (in an append-only pool) never dangle, even after a library
 *    is unloaded. A file's symbol table is built on the first lookup that
 *    lands in it.
 *  - snap: the mappings as of the last refresh, in address order (the
 *    order of /proc/self/maps), each with its bias and file record. A
 *    refresh builds a new snapshot and frees the old one.
 * Everything is published last with a release store (a record's fields
 * before nfiles counts it, a symbol table before its loaded flag, a
 * snapshot by one pointer), so a fork child, which re-initialises the lock
 * whoever held it (symtab_fork_child), finds consistent state.
 *
 * A file is opened by its path in the maps line and used only if its inode
 * matches (its device may differ on overlay file systems); otherwise, or
 * for a deleted file, /proc/self/map_files/<start>-<limit> is tried. A
 * file that cannot be opened keeps its mapping, without symbols or build
 * id. A mapped file truncated on disk afterwards would fault (SIGBUS) when
 * read: files are not expected to change under a running program.
 */
#include "internal.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- Metadata memory ----------------------------------------------------
 */

static pthread_mutex_t symtab_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t sys_bytes;    /* metadata mapped (symtab_lock; read relaxed) */
static uint64_t mapped_files; /* files mapped (symtab_lock; read relaxed) */

static size_t round_page(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/* Zeroed anonymous memory of at least n bytes; NULL on failure. */
static void *meta_alloc(size_t n)
{
    n = round_page(n);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    store_relaxed(&sys_bytes, sys_bytes + n);
    return p;
}

static void meta_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    n = round_page(n);
    munmap(p, n);
    store_relaxed(&sys_bytes, sys_bytes - n);
}

uint64_t symtab_sys_bytes(void)
{
    return load_relaxed(&sys_bytes);
}

uint64_t symtab_file_bytes(void)
{
    return load_relaxed(&mapped_files);
}

/* The append-only string pool: paths and build ids, never freed. */
enum { POOL_CHUNK = 64 << 10 };
static char *pool_next, *pool_end;

static const char *pool_strdup(const char *s, size_t n)
{
    if ((size_t)(pool_end - pool_next) < n + 1) {
        size_t size = n + 1 > POOL_CHUNK ? n + 1 : POOL_CHUNK;
        char *c = meta_alloc(size);
        if (c == NULL)
            return "";
        pool_next = c;
        pool_end = c + round_page(size);
    }
    char *d = pool_next;
    memcpy(d, s, n);
    d[n] = 0;
    pool_next += n + 1;
    return d;
}

/* ---- Files ----------------------------------------------------------------
 */

typedef struct symbol {
    uint64_t addr; /* ELF virtual address */
    uint64_t name; /* offset of the NUL-terminated name in the file image */
    uint32_t size; /* bytes; 0: up to the next symbol */
    uint8_t bind;  /* STB_* */
} symbol;

typedef struct symfile {
    uint64_t dev, ino;
    const char *path;     /* pool */
    const char *build_id; /* pool; "" if none */
    const uint8_t *image; /* the whole file, read-only; NULL if unusable */
    size_t image_size;
    symbol *syms; /* sorted by addr, one per address */
    size_t nsyms, syms_bytes;
    uint32_t loaded; /* syms built (release store) */
} symfile;

static symfile *files;
static size_t nfiles, files_cap;

/* The ELF header of a file image, if it is a 64-bit little-endian ELF file
 * this code can read. */
static bool elf_header(const symfile *f, Elf64_Ehdr *eh)
{
    if (f->image == NULL || f->image_size < sizeof *eh)
        return false;
    memcpy(eh, f->image, sizeof *eh);
    return memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
           eh->e_ident[EI_CLASS] == ELFCLASS64 &&
           eh->e_ident[EI_DATA] == ELFDATA2LSB &&
           (eh->e_type == ET_EXEC || eh->e_type == ET_DYN);
}

/* [off, off+n) lies within the image. */
static bool in_image(const symfile *f, uint64_t off, uint64_t n)
{
    return off <= f->image_size && n <= f->image_size - off;
}

/* Program header i, if the table is well-formed. */
static bool elf_phdr(const symfile *f, const Elf64_Ehdr *eh, unsigned i,
                     Elf64_Phdr *ph)
{
    if (eh->e_phentsize != sizeof *ph ||
        !in_image(f, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof *ph))
        return false;
    memcpy(ph, f->image + eh->e_phoff + (uint64_t)i * sizeof *ph, sizeof *ph);
    return true;
}

/* The number of section headers (0 if the table is unusable). */
static size_t elf_shnum(const symfile *f, const Elf64_Ehdr *eh)
{
    if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_image(f, eh->e_shoff, sizeof(Elf64_Shdr)))
        return 0;
    size_t n = eh->e_shnum;
    if (n == 0) { /* more than SHN_LORESERVE: the count is in section 0 */
        Elf64_Shdr sh0;
        memcpy(&sh0, f->image + eh->e_shoff, sizeof sh0);
        n = sh0.sh_size;
    }
    if (!in_image(f, eh->e_shoff, (uint64_t)n * sizeof(Elf64_Shdr)))
        return 0;
    return n;
}

static void elf_shdr(const symfile *f, const Elf64_Ehdr *eh, size_t i,
                     Elf64_Shdr *sh)
{
    memcpy(sh, f->image + eh->e_shoff + i * sizeof *sh, sizeof *sh);
}

/* Scans the notes in [off, off+size) of the image for NT_GNU_BUILD_ID
 * (owner "GNU"); writes its lower-case hex into hex (room for 2*max+1).
 * Notes are padded to align (4, or 8 in 8-aligned note segments). */
static bool note_build_id(const symfile *f, uint64_t off, uint64_t size,
                          uint64_t align, char *hex, size_t max)
{
    static const char digits[] = "0123456789abcdef";
    if (!in_image(f, off, size))
        return false;
    align = align == 8 ? 8 : 4;
    const uint8_t *p = f->image + off;
    uint64_t at = 0;
    while (size - at >= 12) {
        uint32_t nh[3]; /* namesz, descsz, type */
        memcpy(nh, p + at, sizeof nh);
        uint64_t name = at + 12;
        uint64_t desc = name + ((nh[0] + align - 1) & ~(align - 1));
        uint64_t next = desc + ((nh[1] + align - 1) & ~(align - 1));
        if (desc > size || nh[1] > size - desc)
            return false;
        if (nh[2] == NT_GNU_BUILD_ID && nh[0] == 4 &&
            memcmp(p + name, "GNU", 4) == 0 && nh[1] > 0 && nh[1] <= max) {
            for (uint32_t i = 0; i < nh[1]; i++) {
                hex[2 * i] = digits[p[desc + i] >> 4];
                hex[2 * i + 1] = digits[p[desc + i] & 15];
            }
            hex[2 * nh[1]] = 0;
            return true;
        }
        if (next >= size)
            return false;
        at = next;
    }
    return false;
}

/* The build id from the note segments, else the note sections. */
static const char *file_build_id(const symfile *f)
{
    enum { MAX_ID = 64 };
    char hex[2 * MAX_ID + 1];
    Elf64_Ehdr eh;
    if (!elf_header(f, &eh))
        return "";
    Elf64_Phdr ph;
    for (unsigned i = 0; i < eh.e_phnum && elf_phdr(f, &eh, i, &ph); i++)
        if (ph.p_type == PT_NOTE &&
            note_build_id(f, ph.p_offset, ph.p_filesz, ph.p_align, hex, MAX_ID))
            return pool_strdup(hex, strlen(hex));
    size_t shnum = elf_shnum(f, &eh);
    for (size_t i = 0; i < shnum; i++) {
        Elf64_Shdr sh;
        elf_shdr(f, &eh, i, &sh);
        if (sh.sh_type == SHT_NOTE &&
            note_build_id(f, sh.sh_offset, sh.sh_size, sh.sh_addralign, hex,
                          MAX_ID))
            return pool_strdup(hex, strlen(hex));
    }
    return "";
}

/* The load bias of the mapping [start, ...) at file offset off of f. */
static uintptr_t mapping_bias(const symfile *f, uintptr_t start, uint64_t off)
{
    uintptr_t bias = start - off; /* if no segment says otherwise */
    Elf64_Ehdr eh;
    if (!elf_header(f, &eh))
        return bias;
    uint64_t page = (uint64_t)getpagesize();
    bool exec_found = false;
    Elf64_Phdr ph;
    for (unsigned i = 0; i < eh.e_phnum && elf_phdr(f, &eh, i, &ph); i++) {
        if (ph.p_type != PT_LOAD || off < (ph.p_offset & ~(page - 1)) ||
            off >= ph.p_offset + ph.p_filesz)
            continue;
        /* two segments can share a page: the executable one is ours */
        bool exec = (ph.p_flags & PF_X) != 0;
        if (exec_found && !exec)
            continue;
        bias = start - off - (uintptr_t)(ph.p_vaddr - ph.p_offset);
        exec_found = exec;
    }
    return bias;
}

/* Opens path and checks it is the file of the maps line (inode). */
static int open_checked(const char *path, uint64_t ino, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || (uint64_t)st->st_ino != ino ||
        !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

static char *put_hex(char *d, uintptr_t v)
{
    char tmp[2 * sizeof v];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    while (n > 0)
        *d++ = tmp[--n];
    return d;
}

/* The record of the file of a maps line (created and mapped if new); its
 * index, or -1 if out of memory. */
static long file_for(uint64_t dev, uint64_t ino, const char *path,
                     size_t pathlen, uintptr_t start, uintptr_t limit)
{
    for (size_t i = 0; i < nfiles; i++)
        if (files[i].ino == ino && files[i].dev == dev &&
            strncmp(files[i].path, path, pathlen) == 0 &&
            files[i].path[pathlen] == 0)
            return (long)i;
    if (nfiles == files_cap) {
        size_t cap = files_cap ? 2 * files_cap : 64;
        symfile *n = meta_alloc(cap * sizeof *n);
        if (n == NULL)
            return -1;
        if (nfiles > 0)
            memcpy(n, files, nfiles * sizeof *n);
        symfile *old = files;
        store_release(&files, n);
        files_cap = cap;
        meta_free(old, nfiles * sizeof *n);
    }
    symfile *f = &files[nfiles];
    memset(f, 0, sizeof *f);
    f->dev = dev;
    f->ino = ino;
    f->path = pool_strdup(path, pathlen);
    f->build_id = "";

    struct stat st;
    int fd = open_checked(f->path, ino, &st);
    if (fd < 0) { /* replaced or deleted since it was mapped */
        char alt[64] = "/proc/self/map_files/";
        char *e = put_hex(alt + strlen(alt), start);
        *e++ = '-';
        *put_hex(e, limit) = 0;
        fd = open_checked(alt, ino, &st);
    }
    if (fd >= 0) {
        if (st.st_size > 0) {
            void *p =
                mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p != MAP_FAILED) {
                f->image = p;
                f->image_size = (size_t)st.st_size;
                store_relaxed(&mapped_files,
                              mapped_files + round_page(f->image_size));
            }
        }
        close(fd);
    }
    f->build_id = file_build_id(f);
    store_release(&nfiles, nfiles + 1);
    return (long)(nfiles - 1);
}

/* ---- Symbol tables --------------------------------------------------------
 */

static void sift_down(symbol *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1].addr > a[c].addr)
            c++;
        if (a[i].addr >= a[c].addr)
            return;
        symbol t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

/* Heapsort by address: no recursion, no allocation, O(n log n). */
static void sort_symbols(symbol *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        symbol t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static unsigned leading_underscores(const char *s)
{
    unsigned n = 0;
    while (s[n] == '_')
        n++;
    return n;
}

/* Of two symbols at one address, is a the name to show? A sized symbol,
 * then the name with fewer leading underscores (write over __write and
 * __libc_write), a global over a weak over a local one, the shorter name,
 * and the first in byte order, so the choice does not depend on table
 * order. */
static bool better_alias(const symfile *f, const symbol *a, const symbol *b)
{
    if ((a->size != 0) != (b->size != 0))
        return a->size != 0;
    const char *na = (const char *)f->image + a->name;
    const char *nb = (const char *)f->image + b->name;
    unsigned ua = leading_underscores(na), ub = leading_underscores(nb);
    if (ua != ub)
        return ua < ub;
    static const int rank[] = {
        [STB_LOCAL] = 2, [STB_GLOBAL] = 0, [STB_WEAK] = 1};
    int ra = a->bind <= STB_WEAK ? rank[a->bind] : 3;
    int rb = b->bind <= STB_WEAK ? rank[b->bind] : 3;
    if (ra != rb)
        return ra < rb;
    size_t la = strlen(na), lb = strlen(nb);
    if (la != lb)
        return la < lb;
    return strcmp(na, nb) < 0;
}

/* Visits the function symbols of every SHT_SYMTAB and SHT_DYNSYM section:
 * counts them if out is NULL, else stores them. Returns the count. */
static size_t scan_symbols(const symfile *f, symbol *out)
{
    Elf64_Ehdr eh;
    if (!elf_header(f, &eh))
        return 0;
    size_t shnum = elf_shnum(f, &eh), n = 0;
    for (size_t i = 0; i < shnum; i++) {
        Elf64_Shdr sh, strsh;
        elf_shdr(f, &eh, i, &sh);
        if ((sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
            (sh.sh_entsize != 0 && sh.sh_entsize != sizeof(Elf64_Sym)) ||
            !in_image(f, sh.sh_offset, sh.sh_size) || sh.sh_link >= shnum)
            continue;
        elf_shdr(f, &eh, sh.sh_link, &strsh);
        if (strsh.sh_type != SHT_STRTAB ||
            !in_image(f, strsh.sh_offset, strsh.sh_size))
            continue;
        /* names must end inside the table: use it up to its last NUL */
        const char *str = (const char *)f->image + strsh.sh_offset;
        uint64_t strsz = strsh.sh_size;
        while (strsz > 0 && str[strsz - 1] != 0)
            strsz--;
        uint64_t count = sh.sh_size / sizeof(Elf64_Sym);
        for (uint64_t k = 1; k < count; k++) { /* entry 0 is null */
            Elf64_Sym s;
            memcpy(&s, f->image + sh.sh_offset + k * sizeof s, sizeof s);
            unsigned type = ELF64_ST_TYPE(s.st_info);
            if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
                s.st_shndx == SHN_UNDEF || s.st_value == 0 || s.st_name == 0 ||
                s.st_name >= strsz)
                continue;
            if (out != NULL) {
                out[n].addr = s.st_value;
                out[n].name = strsh.sh_offset + s.st_name;
                out[n].size =
                    s.st_size > UINT32_MAX ? UINT32_MAX : (uint32_t)s.st_size;
                out[n].bind = (uint8_t)ELF64_ST_BIND(s.st_info);
            }
            n++;
        }
    }
    return n;
}

/* Builds f's sorted table, one symbol per address, if not yet done. */
static void load_symbols(symfile *f)
{
    if (load_relaxed(&f->loaded))
        return;
    size_t n = scan_symbols(f, NULL), bytes = n * sizeof(symbol);
    symbol *a = n > 0 ? meta_alloc(bytes) : NULL;
    if (a != NULL) {
        n = scan_symbols(f, a);
        sort_symbols(a, n);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (m > 0 && a[m - 1].addr == a[i].addr) {
                if (better_alias(f, &a[i], &a[m - 1]))
                    a[m - 1] = a[i];
            } else {
                a[m++] = a[i];
            }
        }
        f->syms = a;
        f->nsyms = m;
        f->syms_bytes = bytes;
    }
    store_release(&f->loaded, 1);
}

/* The symbol covering ELF address v of f (v below vlimit, the end of its
 * mapping), or NULL. */
static const symbol *find_symbol(const symfile *f, uint64_t v, uint64_t vlimit)
{
    const symbol *a = f->syms;
    size_t lo = 0, hi = f->nsyms;
    while (lo < hi) { /* lo: the first symbol above v */
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid].addr <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    size_t i = lo - 1;
    if (a[i].size != 0 ? v - a[i].addr < a[i].size
                       : v < (i + 1 < f->nsyms ? a[i + 1].addr : vlimit))
        return &a[i];
    /* a few symbols back, one that encloses the nearest (nested symbols) */
    for (size_t j = i; j-- > 0 && i - j <= 16;)
        if (a[j].size != 0 && v - a[j].addr < a[j].size)
            return &a[j];
    return NULL;
}

/* ---- Mappings -------------------------------------------------------------
 */

/* One refresh's mappings; the arrays follow the header in one block. */
typedef struct snapshot {
    size_t n, cap, bytes;
    sym_mapping *maps;
    uintptr_t *bias;
    uint32_t *file;
} snapshot;

static snapshot *snap;        /* the published one (release store) */
static char *maps_buf;        /* the read buffer for /proc/self/maps */
enum { MAPS_BUF = 64 << 10 }; /* > the longest line: PATH_MAX + ~100 */

static snapshot *snapshot_new(size_t cap)
{
    size_t bytes =
        sizeof(snapshot) +
        cap * (sizeof(sym_mapping) + sizeof(uintptr_t) + sizeof(uint32_t));
    snapshot *s = meta_alloc(bytes);
    if (s == NULL)
        return NULL;
    s->cap = cap;
    s->bytes = bytes;
    s->maps = (sym_mapping *)(s + 1);
    s->bias = (uintptr_t *)(s->maps + cap);
    s->file = (uint32_t *)(s->bias + cap);
    return s;
}

/* Appends a mapping, growing s (which may move); false if out of memory. */
static bool snapshot_add(snapshot **sp, const sym_mapping *m, uintptr_t bias,
                         uint32_t file)
{
    snapshot *s = *sp;
    if (s->n == s->cap) {
        snapshot *t = snapshot_new(2 * s->cap);
        if (t == NULL)
            return false;
        t->n = s->n;
        memcpy(t->maps, s->maps, s->n * sizeof *s->maps);
        memcpy(t->bias, s->bias, s->n * sizeof *s->bias);
        memcpy(t->file, s->file, s->n * sizeof *s->file);
        meta_free(s, s->bytes);
        *sp = s = t;
    }
    s->maps[s->n] = *m;
    s->bias[s->n] = bias;
    s->file[s->n] = file;
    s->n++;
    return true;
}

/* Parses a hex or decimal number at *p, advancing it. */
static uint64_t parse_num(const char **p, const char *end, unsigned base)
{
    uint64_t v = 0;
    for (const char *s = *p; s < end; s++, *p = s) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else
            break;
        v = v * base + d;
    }
    return v;
}

static bool expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

/* One line of /proc/self/maps, without its newline:
 *   start-limit perms offset major:minor inode   path
 * Adds it to s if it is an executable mapping of a file. */
static bool parse_line(snapshot **s, const char *p, const char *end)
{
    uintptr_t start = parse_num(&p, end, 16);
    if (!expect(&p, end, '-'))
        return true;
    uintptr_t limit = parse_num(&p, end, 16);
    if (!expect(&p, end, ' ') || end - p < 5 || p[2] != 'x')
        return true;
    p += 4;
    if (!expect(&p, end, ' '))
        return true;
    uint64_t off = parse_num(&p, end, 16);
    if (!expect(&p, end, ' '))
        return true;
    uint64_t major = parse_num(&p, end, 16);
    if (!expect(&p, end, ':'))
        return true;
    uint64_t minor = parse_num(&p, end, 16);
    if (!expect(&p, end, ' '))
        return true;
    uint64_t ino = parse_num(&p, end, 10);
    while (p < end && *p == ' ')
        p++;
    if (p == end || *p != '/' || start >= limit)
        return true; /* anonymous, [vdso], [vsyscall] ... */
    if ((*s)->n > 0 && start < (*s)->maps[(*s)->n - 1].limit)
        return true; /* out of order: never from the kernel */
    long fi =
        file_for(major << 32 | minor, ino, p, (size_t)(end - p), start, limit);
    if (fi < 0)
        return false;
    const symfile *f = &files[fi];
    sym_mapping m = {.start = start,
                     .limit = limit,
                     .offset = off,
                     .path = f->path,
                     .build_id = f->build_id};
    return snapshot_add(s, &m, mapping_bias(f, start, off), (uint32_t)fi);
}

static void refresh_locked(void)
{
    if (maps_buf == NULL && (maps_buf = meta_alloc(MAPS_BUF)) == NULL)
        return;
    snapshot *s = snapshot_new(64);
    if (s == NULL)
        return;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        size_t have = 0;
        bool ok = true, skipping = false;
        while (ok) {
            /* the system call itself: read() is interposed (wtrack) */
            long r = syscall(SYS_read, fd, maps_buf + have, MAPS_BUF - have);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            have += (size_t)r;
            const char *line = maps_buf, *end = maps_buf + have;
            while (ok) {
                const char *nl = memchr(line, '\n', (size_t)(end - line));
                if (nl == NULL)
                    break;
                if (!skipping)
                    ok = parse_line(&s, line, nl);
                skipping = false;
                line = nl + 1;
            }
            have = (size_t)(end - line);
            if (have == MAPS_BUF) { /* a line longer than the buffer */
                have = 0;
                skipping = true;
            }
            memmove(maps_buf, line, have);
        }
        close(fd);
    }
    snapshot *old = snap;
    store_release(&snap, s);
    if (old != NULL)
        meta_free(old, old->bytes);
}

/* ---- API ------------------------------------------------------------------
 */

void symtab_refresh(void)
{
    pthread_mutex_lock(&symtab_lock);
    refresh_locked();
    pthread_mutex_unlock(&symtab_lock);
}

size_t symtab_mappings(const sym_mapping **out)
{
    pthread_mutex_lock(&symtab_lock);
    if (snap == NULL)
        refresh_locked();
    size_t n = snap != NULL ? snap->n : 0;
    *out = snap != NULL ? snap->maps : NULL;
    pthread_mutex_unlock(&symtab_lock);
    return n;
}

bool symtab_lookup(uintptr_t pc, const char **name, uintptr_t *offset,
                   size_t *mapping)
{
    const char *nm = NULL;
    uintptr_t off = 0;
    size_t lo = 0;
    pthread_mutex_lock(&symtab_lock);
    if (snap == NULL)
        refresh_locked();
    const snapshot *s = snap;
    size_t hi = s != NULL ? s->n : 0;
    while (lo < hi) { /* lo: the first mapping starting above pc */
        size_t mid = lo + (hi - lo) / 2;
        if (s->maps[mid].start <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool found = lo > 0 && pc < s->maps[lo - 1].limit;
    if (found) {
        lo--;
        symfile *f = &files[s->file[lo]];
        load_symbols(f);
        uintptr_t bias = s->bias[lo];
        const symbol *sym = find_symbol(f, pc - bias, s->maps[lo].limit - bias);
        if (sym != NULL) {
            nm = (const char *)f->image + sym->name;
            off = pc - bias - (uintptr_t)sym->addr;
        }
    }
    pthread_mutex_unlock(&symtab_lock);
    if (name != NULL)
        *name = nm;
    if (offset != NULL)
        *offset = off;
    if (mapping != NULL)
        *mapping = found ? lo : 0;
    return found;
}

void symtab_fork_child(void)
{
    pthread_mutex_init(&symtab_lock, NULL);
}
