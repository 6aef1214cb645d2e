/*
 * A TCP request/response probe (netperf's TCP_RR, which Debian main does not ship): one
 * connection, one byte each way per transaction, as fast as the round trip allows.
 *
 *   rr server PORT              answers every byte with one byte, one client at a time, forever
 *   rr client IP PORT SECONDS   prints: transactions=N seconds=S p50_us=X p99_us=Y
 *
 * Built by bench/datapath.ts with `cc -O2`; latencies are per transaction (CLOCK_MONOTONIC).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static int serve(int port) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 16)) {
    perror("rr server");
    return 1;
  }
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b;
    while (read(c, &b, 1) == 1 && write(c, &b, 1) == 1) {
    }
    close(c);
  }
}

static int client(const char *ip, int port, double seconds) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1 || connect(s, (struct sockaddr *)&a, sizeof a)) {
    perror("rr client");
    return 1;
  }
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  size_t cap = 1 << 16, n = 0;
  float *lat = malloc(cap * sizeof *lat);
  double start = now(), end = start + seconds, t = start;
  char b = 'x';
  while (t < end) {
    double t0 = t;
    if (write(s, &b, 1) != 1 || read(s, &b, 1) != 1) {
      perror("rr transaction");
      return 1;
    }
    t = now();
    if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
    if (!lat) return 1;
    lat[n++] = (float)((t - t0) * 1e6);
  }
  qsort(lat, n, sizeof *lat, cmp);
  printf("transactions=%zu seconds=%.3f p50_us=%.1f p99_us=%.1f\n", n, t - start, n ? lat[n / 2] : 0.0, n ? lat[(size_t)(n * 0.99)] : 0.0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "server")) return serve(atoi(argv[2]));
  if (argc == 5 && !strcmp(argv[1], "client")) return client(argv[2], atoi(argv[3]), atof(argv[4]));
  fprintf(stderr, "usage: rr server PORT | rr client IP PORT SECONDS\n");
  return 2;
}
