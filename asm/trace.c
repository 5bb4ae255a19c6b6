/*
 * trace.c - oracle driver for the brk pool allocator ([original-behaviour.md section B](../docs/original-behaviour.md#b-the-oracle-driver)).
 *
 * Links either with the original (asm/run.s, with memory_start/memory_end made global)
 * or with the port's static library, which exports the same symbols:
 *
 *   as asm/run.s -o run.o
 *   objcopy --globalize-symbol=memory_start --globalize-symbol=memory_end run.o run_g.o
 *   gcc -no-pie -O2 -Wall -Wextra asm/trace.c run_g.o -o trace_orig
 *
 * Reads a script on stdin, one operation per line:
 *   a POOL SIZE    allocate(POOL, SIZE); the result becomes handle h0, h1, ... (in order of `a` ops)
 *   d H | d hH     deallocate(pointer of handle H)
 *   p POOL         deallocate_pool(POOL)
 * A comment runs from `#` to the end of the line; blank lines are skipped.
 * POOL and SIZE are decimal C ints (optional leading `-`).
 *
 * After every executed op it prints the op line and the heap layout (walked from
 * memory_start by the size fields up to memory_end); offsets are relative to the
 * program break read by the first statement of main.  With -f only the op lines are
 * printed, followed by the final layout.
 *
 * The driver never calls malloc and uses no stdio: glibc malloc moves the program
 * break and would corrupt the original allocator ([original-behaviour.md A.8](../docs/original-behaviour.md#a8-interleaving-with-glibc-malloc)).  Input
 * is read with read(2) into a static buffer, output is formatted by hand into a static
 * buffer and written with write(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void *allocate(uint64_t pool, uint64_t size);
void deallocate(void *ptr);
void deallocate_pool(uint64_t pool);
extern uint64_t memory_start, memory_end;

#define INPUT_CAP (16u << 20)  /* 16 MiB of script */
#define OUTPUT_CAP (1u << 20)  /* flushed when full */
#define MAX_HANDLES (1u << 22) /* > INPUT_CAP / strlen("a 0 0\n"): cannot overflow */

static char input[INPUT_CAP + 1];
static char output[OUTPUT_CAP];
static size_t out_len;
static void *handles[MAX_HANDLES];
static uint64_t handle_count;

static uintptr_t heap0; /* program break at the start of main */

/* What is running, for the signal handler. */
enum phase { PHASE_IDLE, PHASE_ALLOCATE, PHASE_DEALLOCATE, PHASE_DEALLOCATE_POOL, PHASE_WALK };
static volatile sig_atomic_t phase = PHASE_IDLE;
static volatile uint64_t current_op; /* number of the op being executed / last executed */
static volatile sig_atomic_t any_op;  /* 1 once an op has been executed */

/* ------------------------------------------------------------------ output */

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(2);
        }
        p += w;
        n -= (size_t)w;
    }
}

static void flush(void)
{
    write_all(output, out_len);
    out_len = 0;
}

static void put_mem(const char *p, size_t n)
{
    while (n > 0) {
        size_t room = OUTPUT_CAP - out_len;
        size_t k = n < room ? n : room;
        memcpy(output + out_len, p, k);
        out_len += k;
        p += k;
        n -= k;
        if (out_len == OUTPUT_CAP)
            flush();
    }
}

static void put_str(const char *s) { put_mem(s, strlen(s)); }

/* Formatting into a caller-supplied buffer (also used by the signal handler). */
static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static size_t fmt_hex(char *buf, uint64_t v)
{
    char tmp[16];
    size_t n = 0, i;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    for (i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* "+0x1b0" / "-0x20": address relative to the heap start. */
static size_t fmt_off(char *buf, uintptr_t addr)
{
    size_t n = 0;
    uint64_t mag;
    if (addr >= heap0) {
        buf[n++] = '+';
        mag = (uint64_t)(addr - heap0);
    } else {
        buf[n++] = '-';
        mag = (uint64_t)(heap0 - addr);
    }
    buf[n++] = '0';
    buf[n++] = 'x';
    return n + fmt_hex(buf + n, mag);
}

static void put_u64(uint64_t v)
{
    char b[24];
    put_mem(b, fmt_u64(b, v));
}

static void put_i32(int32_t v)
{
    if (v < 0) {
        put_mem("-", 1);
        put_u64((uint64_t)(-(int64_t)v));
    } else {
        put_u64((uint64_t)v);
    }
}

static void put_off(uintptr_t addr)
{
    char b[24];
    put_mem(b, fmt_off(b, addr));
}

/* ------------------------------------------------------------------ layout */

static void print_layout(void)
{
    uint64_t start = memory_start, end = memory_end;

    if (start != 0 || end != 0) {
        uint64_t cur = start;
        phase = PHASE_WALK;
        if (start == 0 || end == 0 || cur > end) {
            put_str("!! walk: inconsistent bounds memory_start=");
            put_off((uintptr_t)start);
            put_str(" memory_end=");
            put_off((uintptr_t)end);
            put_str("\n");
        } else {
            while (cur != end) {
                const volatile uint64_t *h = (const volatile uint64_t *)(uintptr_t)cur;
                uint64_t in_use = h[0], size = h[1], pool = h[2];
                put_off((uintptr_t)cur);
                put_str(" in_use=");
                put_u64(in_use);
                put_str(" size=");
                put_u64(size);
                put_str(" pool=");
                put_u64(pool);
                put_str("\n");
                if (size == 0) {
                    put_str("!! walk: block at ");
                    put_off((uintptr_t)cur);
                    put_str(" has size 0\n");
                    break;
                }
                if (size > end - cur) {
                    put_str("!! walk: block at ");
                    put_off((uintptr_t)cur);
                    put_str(" with size ");
                    put_u64(size);
                    put_str(" passes memory_end\n");
                    break;
                }
                cur += size;
            }
        }
        phase = PHASE_IDLE;
    }
    put_str("end=");
    if (end == 0)
        put_str("+0x0");
    else
        put_off((uintptr_t)end);
    put_str("\n");
}

/* ------------------------------------------------------------------ signals */

static char sig_stack[64 * 1024];
static char sig_msg[256];

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    static const char *const what[] = {"", "allocate", "deallocate", "deallocate_pool", ""};
    size_t n = 0;
    const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "?";
    const char *s;
    (void)uc;

    flush();
#define ADD(str) for (s = (str); *s; s++) sig_msg[n++] = *s
    ADD("!! signal ");
    n += fmt_u64(sig_msg + n, (uint64_t)sig);
    ADD(" (");
    ADD(name);
    ADD(") during ");
    if (phase == PHASE_WALK || phase == PHASE_IDLE) {
        ADD(phase == PHASE_WALK ? "the layout walk" : "the driver");
        if (any_op) {
            ADD(" after op ");
            n += fmt_u64(sig_msg + n, current_op);
        }
    } else {
        ADD("op ");
        n += fmt_u64(sig_msg + n, current_op);
        ADD(" (");
        ADD(what[phase]);
        ADD(")");
    }
    ADD(", fault address ");
    n += fmt_off(sig_msg + n, (uintptr_t)si->si_addr);
    ADD("\n");
#undef ADD
    write_all(sig_msg, n);
    _exit(128 + sig);
}

static void install_handlers(void)
{
    stack_t ss;
    struct sigaction sa;

    memset(&ss, 0, sizeof ss);
    ss.ss_sp = sig_stack;
    ss.ss_size = sizeof sig_stack;
    sigaltstack(&ss, 0);

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = (int)(SA_SIGINFO | SA_ONSTACK | SA_RESETHAND);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, 0);
    sigaction(SIGBUS, &sa, 0);
}

/* ------------------------------------------------------------------ parsing */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A token is a maximal run of non-space characters. */
static const char *skip_spaces(const char *p, const char *e)
{
    while (p < e && is_space(*p))
        p++;
    return p;
}

static const char *token_end(const char *p, const char *e)
{
    while (p < e && !is_space(*p))
        p++;
    return p;
}

enum num_result { NUM_OK, NUM_BAD, NUM_RANGE };

/* Decimal C int with optional leading '-'. */
static enum num_result parse_int(const char *p, const char *e, int32_t *out)
{
    int neg = 0;
    uint64_t mag = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == e)
        return NUM_BAD;
    for (; p < e; p++) {
        if (!is_digit(*p))
            return NUM_BAD;
        if (mag <= 0x80000000u)
            mag = mag * 10 + (uint64_t)(*p - '0');
    }
    if (mag > (neg ? 0x80000000u : 0x7fffffffu))
        return NUM_RANGE;
    *out = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
    return NUM_OK;
}

/* Handle number: decimal digits, optionally prefixed by 'h'.  Saturates at UINT64_MAX. */
static int parse_handle(const char *p, const char *e, uint64_t *out)
{
    uint64_t v = 0;
    if (p < e && *p == 'h')
        p++;
    if (p == e)
        return 0;
    for (; p < e; p++) {
        if (!is_digit(*p))
            return 0;
        uint64_t d = (uint64_t)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return 1;
}

static void error_prefix(uint64_t lineno)
{
    put_str("!! line ");
    put_u64(lineno);
    put_str(": ");
}

static void err_malformed(uint64_t lineno, const char *b, const char *e)
{
    error_prefix(lineno);
    put_str("expected `a POOL SIZE`, `d H` or `p POOL`: ");
    put_mem(b, (size_t)(e - b));
    put_str("\n");
}

static void err_range(uint64_t lineno, const char *b, const char *e)
{
    error_prefix(lineno);
    put_str("number out of range for a C int: ");
    put_mem(b, (size_t)(e - b));
    put_str("\n");
}

/* ------------------------------------------------------------------ main */

static int flag_final_only;
static uint64_t op_count;

static void begin_op(int ph)
{
    current_op = op_count;
    any_op = 1;
    phase = ph;
}

static void end_op(void)
{
    phase = PHASE_IDLE;
    op_count++;
}

static void after_op(void)
{
    if (!flag_final_only)
        print_layout();
}

/* Executes one line (without its '\n'). */
static void run_line(uint64_t lineno, const char *b, const char *e)
{
    const char *t[4], *te[4];
    int nt = 0;
    const char *p;

    /* A comment runs from `#` to the end of the line; trailing spaces / CR
     * are not part of the line text either. */
    p = memchr(b, '#', (size_t)(e - b));
    if (p)
        e = p;
    while (e > b && is_space(e[-1]))
        e--;
    p = skip_spaces(b, e);
    if (p == e)
        return;
    while (p < e && nt < 4) {
        t[nt] = p;
        te[nt] = token_end(p, e);
        p = skip_spaces(te[nt], e);
        nt++;
    }
    if (p < e || te[0] - t[0] != 1) {
        err_malformed(lineno, b, e);
        return;
    }

    switch (*t[0]) {
    case 'a': {
        int32_t pool = 0, size = 0;
        enum num_result r1, r2;
        void *ptr;
        if (nt != 3) {
            err_malformed(lineno, b, e);
            return;
        }
        r1 = parse_int(t[1], te[1], &pool);
        r2 = parse_int(t[2], te[2], &size);
        if (r1 == NUM_BAD || r2 == NUM_BAD) {
            err_malformed(lineno, b, e);
            return;
        }
        if (r1 == NUM_RANGE) {
            err_range(lineno, t[1], te[1]);
            return;
        }
        if (r2 == NUM_RANGE) {
            err_range(lineno, t[2], te[2]);
            return;
        }
        if (handle_count >= MAX_HANDLES) { /* unreachable: see MAX_HANDLES */
            error_prefix(lineno);
            put_str("too many handles\n");
            return;
        }
        begin_op(PHASE_ALLOCATE);
        /* Exactly what gcc's int callers pass: the 32-bit value zero-extended ([A.4](../docs/original-behaviour.md#a4-int-arguments-in-64-bit-registers)). */
        ptr = allocate((uint64_t)(uint32_t)pool, (uint64_t)(uint32_t)size);
        end_op();
        handles[handle_count] = ptr;
        put_str("op ");
        put_u64(current_op);
        put_str(": a ");
        put_i32(pool);
        put_str(" ");
        put_i32(size);
        put_str(" -> h");
        put_u64(handle_count);
        put_str("=");
        if (ptr)
            put_off((uintptr_t)ptr);
        else
            put_str("NULL");
        put_str("\n");
        handle_count++;
        after_op();
        return;
    }
    case 'd': {
        uint64_t h;
        void *ptr;
        if (nt != 2 || !parse_handle(t[1], te[1], &h)) {
            err_malformed(lineno, b, e);
            return;
        }
        if (h >= handle_count) {
            error_prefix(lineno);
            /* The handle number as written, without the `h` and leading zeros. */
            put_str("unknown handle h");
            p = t[1] + (*t[1] == 'h');
            while (te[1] - p > 1 && *p == '0')
                p++;
            put_mem(p, (size_t)(te[1] - p));
            put_str("\n");
            return;
        }
        ptr = handles[h];
        /* Echo before the call would be lost on a crash anyway; print after. */
        begin_op(PHASE_DEALLOCATE);
        deallocate(ptr);
        end_op();
        put_str("op ");
        put_u64(current_op);
        put_str(": d ");
        put_u64(h);
        put_str(" (");
        if (ptr)
            put_off((uintptr_t)ptr);
        else
            put_str("NULL");
        put_str(")\n");
        after_op();
        return;
    }
    case 'p': {
        int32_t pool = 0;
        enum num_result r;
        if (nt != 2) {
            err_malformed(lineno, b, e);
            return;
        }
        r = parse_int(t[1], te[1], &pool);
        if (r == NUM_BAD) {
            err_malformed(lineno, b, e);
            return;
        }
        if (r == NUM_RANGE) {
            err_range(lineno, t[1], te[1]);
            return;
        }
        begin_op(PHASE_DEALLOCATE_POOL);
        deallocate_pool((uint64_t)(uint32_t)pool);
        end_op();
        put_str("op ");
        put_u64(current_op);
        put_str(": p ");
        put_i32(pool);
        put_str("\n");
        after_op();
        return;
    }
    default:
        err_malformed(lineno, b, e);
        return;
    }
}

int main(int argc, char **argv)
{
    size_t len = 0;
    const char *p, *e;
    uint64_t lineno = 0;

    /* Heap start: the program break before the allocator's first call. */
    heap0 = (uintptr_t)syscall(SYS_brk, 0);

    if (argc == 2 && strcmp(argv[1], "-f") == 0) {
        flag_final_only = 1;
    } else if (argc != 1) {
        static const char usage[] = "usage: trace [-f] < script\n";
        if (write(2, usage, sizeof usage - 1) < 0)
            return 2;
        return 2;
    }

    install_handlers();

    for (;;) {
        ssize_t r = read(0, input + len, sizeof input - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            put_str("!! cannot read stdin\n");
            flush();
            return 2;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > INPUT_CAP) {
            put_str("!! input larger than 16 MiB (16777216 bytes)\n");
            flush();
            return 2;
        }
    }

    p = input;
    e = input + len;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        run_line(++lineno, p, le);
        p = nl ? nl + 1 : e;
    }

    if (flag_final_only)
        print_layout();
    flush();
    return 0;
}
