/* Reference for gigapatch-bench read-patches: a plain loop of openslide_read_region over the same patches.
 * Input lines: "path x y level size". Prints one JSON line with patches/s. Single-threaded.
 * Build: cc -O2 benchmarks/openslide_read_loop.c $(pkg-config --cflags --libs openslide) -o read_loop */
#include <openslide.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s PATCHES.txt\n", argv[0]); return 2; }
    FILE *in = fopen(argv[1], "r");
    if (!in) { perror(argv[1]); return 1; }
    char path[4096], open_path[4096] = "";
    long long x, y; int level, size, n = 0, errors = 0;
    openslide_t *osr = NULL;
    uint32_t *buf = NULL; int buf_size = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (fscanf(in, "%4095s %lld %lld %d %d", path, &x, &y, &level, &size) == 5) {
        if (strcmp(path, open_path) != 0) {
            if (osr) openslide_close(osr);
            osr = openslide_open(path);
            if (!osr) { fprintf(stderr, "%s: cannot open\n", path); return 1; }
            strcpy(open_path, path);
        }
        if (size > buf_size) { free(buf); buf = malloc((size_t)size * size * 4); buf_size = size; }
        openslide_read_region(osr, buf, x, y, level, size, size);
        if (openslide_get_error(osr)) errors++;
        n++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"mode\": \"openslide-c-loop\", \"patches\": %d, \"threads\": 1, \"seconds\": %.3f, \"patches_per_s\": %.1f, \"errors\": %d}\n", n, s, n / s, errors);
    return 0;
}
