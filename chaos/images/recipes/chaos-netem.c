/*
 * chaos-netem: packet loss, delay with jitter and corruption in user space, over NFQUEUE.
 *
 * For kernels without sch_netem (tc's netem qdisc), e.g. the minimal VM kernels of CI machines.
 * The suite runs it in a helper container that shares the target's network namespace and has only
 * CAP_NET_ADMIN; an iptables rule sends the target's egress packets to queue N (with
 * --queue-bypass, so packets flow again the moment this program is gone). Duplication is not done
 * here (a verdict cannot duplicate a packet): the suite uses the iptables TEE target for it.
 *
 *   chaos-netem -q QUEUE [-l LOSS_PCT] [-d DELAY_MS] [-j JITTER_MS] [-c CORRUPT_PCT] [-s SEED]
 *
 * Loss: the packet gets an NF_DROP verdict. Delay: the verdict is withheld until
 * now + delay + uniform(-jitter, +jitter) (verdicts may be given out of order, so jitter reorders, as
 * netem does). Corruption: one random bit after the IP header is flipped and the packet is accepted
 * with the changed payload; the kernel computed the checksum before queueing, so the receiver sees a
 * checksum error and drops it, as with netem. On SIGTERM/SIGINT every held packet is released at once,
 * the statistics are printed on one line, and the program exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

struct held {
    uint64_t due_ns;
    uint32_t id;
    unsigned char *data; /* non-NULL: accept with this payload (corrupted) */
    int len;
};

static struct held *heap;
static size_t heap_len, heap_cap;
static double loss_p, corrupt_p;
static long delay_ms, jitter_ms;
static unsigned long seen, dropped, corrupted, delayed, released;
static volatile sig_atomic_t stopping;
static struct nfq_q_handle *qh;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double uniform(void) { return (double)random() / ((double)RAND_MAX + 1.0); }

static void heap_push(struct held h) {
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = realloc(heap, heap_cap * sizeof *heap);
        if (!heap) { perror("realloc"); exit(1); }
    }
    size_t i = heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent].due_ns <= h.due_ns) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = h;
}

static struct held heap_pop(void) {
    struct held top = heap[0], last = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1;
        if (l >= heap_len) break;
        size_t m = (r < heap_len && heap[r].due_ns < heap[l].due_ns) ? r : l;
        if (last.due_ns <= heap[m].due_ns) break;
        heap[i] = heap[m];
        i = m;
    }
    if (heap_len > 0) heap[i] = last;
    return top;
}

static void verdict(uint32_t id, unsigned char *data, int len) {
    nfq_set_verdict(qh, id, NF_ACCEPT, data ? (uint32_t)len : 0, data);
    free(data);
    released++;
}

static void flip_bit(unsigned char *pkt, int len) {
    int start = 0;
    if (len >= 20 && (pkt[0] >> 4) == 4) start = (pkt[0] & 0x0f) * 4; /* after the IPv4 header */
    else if (len >= 40 && (pkt[0] >> 4) == 6) start = 40;
    if (start >= len) start = 0;
    int at = start + (int)(uniform() * (len - start));
    pkt[at] ^= (unsigned char)(1u << (int)(uniform() * 8));
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *arg) {
    (void)msg; (void)arg;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph) return 0;
    uint32_t id = ntohl(ph->packet_id);
    seen++;
    if (loss_p > 0 && uniform() < loss_p) {
        dropped++;
        return nfq_set_verdict(q, id, NF_DROP, 0, NULL);
    }
    unsigned char *copy = NULL;
    int len = 0;
    if (corrupt_p > 0 && uniform() < corrupt_p) {
        unsigned char *payload;
        len = nfq_get_payload(nfa, &payload);
        if (len > 0 && (copy = malloc((size_t)len)) != NULL) {
            memcpy(copy, payload, (size_t)len);
            flip_bit(copy, len);
            corrupted++;
        }
    }
    long d = delay_ms;
    if (jitter_ms > 0) d += (long)((uniform() * 2.0 - 1.0) * (double)jitter_ms);
    if (d <= 0) {
        verdict(id, copy, len);
        return 0;
    }
    delayed++;
    heap_push((struct held){now_ns() + (uint64_t)d * 1000000ull, id, copy, len});
    return 0;
}

static void on_signal(int sig) { (void)sig; stopping = 1; }

static void usage(void) {
    fprintf(stderr, "usage: chaos-netem -q QUEUE [-l LOSS_PCT] [-d DELAY_MS] [-j JITTER_MS] "
                    "[-c CORRUPT_PCT] [-s SEED]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int queue = -1, opt;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    while ((opt = getopt(argc, argv, "q:l:d:j:c:s:")) != -1) {
        switch (opt) {
        case 'q': queue = atoi(optarg); break;
        case 'l': loss_p = atof(optarg) / 100.0; break;
        case 'd': delay_ms = atol(optarg); break;
        case 'j': jitter_ms = atol(optarg); break;
        case 'c': corrupt_p = atof(optarg) / 100.0; break;
        case 's': seed = (unsigned)strtoul(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (queue < 0 || queue > 65535 || loss_p < 0 || loss_p > 1 || corrupt_p < 0 || corrupt_p > 1 ||
        delay_ms < 0 || jitter_ms < 0)
        usage();
    srandom(seed);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct nfq_handle *h = nfq_open();
    if (!h) { perror("nfq_open"); return 1; }
    nfq_unbind_pf(h, AF_INET);
    if (nfq_bind_pf(h, AF_INET) < 0) { perror("nfq_bind_pf"); return 1; }
    qh = nfq_create_queue(h, (uint16_t)queue, &on_packet, NULL);
    if (!qh) { perror("nfq_create_queue"); return 1; }
    if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff) < 0) { perror("nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(qh, 65536);
    /* if the kernel queue overflows, let packets through rather than drop them */
    nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
    nfnl_rcvbufsiz(nfq_nfnlh(h), 8 * 1024 * 1024);
    int fd = nfq_fd(h);
    printf("chaos-netem: queue=%d loss=%.3f delay_ms=%ld jitter_ms=%ld corrupt=%.3f ready\n", queue, loss_p,
           delay_ms, jitter_ms, corrupt_p);
    fflush(stdout);

    char buf[0x20000] __attribute__((aligned));
    while (!stopping) {
        int timeout = -1;
        if (heap_len > 0) {
            uint64_t now = now_ns();
            timeout = heap[0].due_ns <= now ? 0 : (int)((heap[0].due_ns - now) / 1000000ull) + 1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, timeout);
        if (n < 0 && errno != EINTR) { perror("poll"); break; }
        if (n > 0 && (p.revents & POLLIN)) {
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (r < 0) {
                    if (errno == ENOBUFS) continue; /* the kernel dropped messages: keep going */
                    break;
                }
                nfq_handle_packet(h, buf, (int)r);
            }
        }
        uint64_t now = now_ns();
        while (heap_len > 0 && heap[0].due_ns <= now) {
            struct held x = heap_pop();
            verdict(x.id, x.data, x.len);
        }
    }
    while (heap_len > 0) {
        struct held x = heap_pop();
        verdict(x.id, x.data, x.len);
    }
    printf("chaos-netem: stats seen=%lu dropped=%lu corrupted=%lu delayed=%lu released=%lu\n", seen, dropped,
           corrupted, delayed, released);
    fflush(stdout);
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
