/* RFC 1071 internet checksum, the usual fast C way: 32-bit native loads into a 64-bit
 * accumulator (gcc -O3 vectorizes the loop), end-around-carry fold, then convert the
 * native-order result into the big-endian 16-bit value (RFC 1071 §2(B) byte-order
 * independence). Built by benchmarks/bench_checksum.py with gcc -O3 and called via ctypes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint16_t csum(const uint8_t *p, size_t n) {
    uint64_t s = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        s += w;
    }
    for (; i + 2 <= n; i += 2) {
        uint16_t w;
        memcpy(&w, p + i, 2);
        s += w;
    }
    if (i < n) {
        uint16_t w = 0;
        memcpy(&w, p + i, 1); /* odd byte, padded with zero */
        s += w;
    }
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    uint16_t r = (uint16_t)~s;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    r = __builtin_bswap16(r);
#endif
    return r;
}
