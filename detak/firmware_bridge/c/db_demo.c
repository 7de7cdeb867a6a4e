/*
 * db_demo: a host-side harness around the reference encoder, used by detak's tests to compare
 * the C output byte for byte with the Python implementation.
 *
 *   db_demo --crc TEXT                      print CRC-16/CCITT-FALSE of TEXT as 0xXXXX
 *   db_demo --cobs < in.bin > out.bin       plain COBS of stdin (no CRC, no delimiter)
 *   db_demo RATE_MHZ LSB_NV FORMAT BLOCK CH... [/ ELECTRODE...] < samples.i32 > frames.bin
 *
 * The last form reads int32 little-endian samples, sample-major (s0c0 s0c1 ... s1c0 ...), and
 * writes: DEVICE_INFO, ACK(0, GET_INFO), the SAMPLES blocks (timestamp = sample time in µs),
 * LEAD_OFF(250, 0x5), CAL_STATE(500, on), BATTERY(87 %, 3912 mV, charging),
 * ERROR(OVERRUN, 42, "fifo overrun"), NACK(1, START, ALREADY_IN_STATE, "already streaming"),
 * STREAM_END(total samples, STOPPED).
 */
#include "detak_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t wire[DB_WIRE_MAX(11 + 32 * 255 * 3)];

static void emit(size_t n)
{
    if (n == 0) {
        fprintf(stderr, "db_demo: encoder refused a message\n");
        exit(2);
    }
    fwrite(wire, 1, n, stdout);
}

static uint8_t *read_all(size_t *len)
{
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    db_sender s = {0};
    db_device_info info;
    const char *names[32], *electrodes[32];
    int i, n_ch = 0, n_el = 0, in_el = 0;
    size_t len, n_values, n_samples, first;
    uint8_t *raw;
    int32_t *values;
    unsigned block;

    if (argc == 3 && strcmp(argv[1], "--crc") == 0) {
        printf("0x%04X\n", db_crc16((const uint8_t *)argv[2], strlen(argv[2]), DB_CRC_INIT));
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--cobs") == 0) {
        uint8_t *out;
        raw = read_all(&len);
        out = malloc(len + len / 254 + 2);
        if (!raw || !out) {
            return 2;
        }
        fwrite(out, 1, db_cobs_encode(raw, len, out, len + len / 254 + 2), stdout);
        return 0;
    }
    if (argc < 6) {
        fprintf(stderr, "usage: db_demo RATE_MHZ LSB_NV FORMAT BLOCK CH... [/ ELECTRODE...]\n");
        return 2;
    }
    for (i = 5; i < argc; i++) {
        if (strcmp(argv[i], "/") == 0) {
            in_el = 1;
        } else if (in_el && n_el < 32) {
            electrodes[n_el++] = argv[i];
        } else if (!in_el && n_ch < 32) {
            names[n_ch++] = argv[i];
        }
    }
    info.sample_rate_mhz = (uint32_t)strtoul(argv[1], NULL, 10);
    info.lsb_nv = strtof(argv[2], NULL);
    info.sample_format = (uint8_t)atoi(argv[3]);
    block = (unsigned)atoi(argv[4]);
    info.adc_bits = 24;
    info.n_channels = (uint8_t)n_ch;
    info.n_electrodes = (uint8_t)n_el;
    info.model = "detak-ref";
    info.firmware = "c-1.0";
    info.serial = "REF-0001";
    info.channels = names;
    info.electrodes = electrodes;
    if (block < 1 || block > 255 || n_ch < 1) {
        fprintf(stderr, "db_demo: BLOCK must be 1..255 and at least one channel given\n");
        return 2;
    }

    raw = read_all(&len);
    if (!raw) {
        return 2;
    }
    n_values = len / 4;
    values = malloc((n_values + 1) * sizeof *values);
    if (!values) {
        return 2;
    }
    for (i = 0; (size_t)i < n_values; i++) {
        uint32_t u = (uint32_t)raw[4 * i] | ((uint32_t)raw[4 * i + 1] << 8) |
                     ((uint32_t)raw[4 * i + 2] << 16) | ((uint32_t)raw[4 * i + 3] << 24);
        values[i] = (int32_t)u;
    }
    n_samples = n_values / (size_t)n_ch;

    emit(db_encode_device_info(&s, &info, wire, sizeof wire));
    emit(db_encode_ack(&s, 0, DB_GET_INFO, wire, sizeof wire));
    for (first = 0; first < n_samples; first += block) {
        size_t n = n_samples - first < block ? n_samples - first : block;
        uint32_t ts = (uint32_t)((unsigned long long)first * 1000000000ULL /
                                 info.sample_rate_mhz);
        emit(db_encode_samples(&s, (uint32_t)first, ts, info.sample_format, (uint8_t)n_ch,
                               (uint8_t)n, values + first * (size_t)n_ch, wire, sizeof wire));
    }
    emit(db_encode_lead_off(&s, 250, 0x5, wire, sizeof wire));
    emit(db_encode_cal_state(&s, 500, 1, wire, sizeof wire));
    emit(db_encode_battery(&s, 87, 3912, 1, 0, wire, sizeof wire));
    emit(db_encode_error(&s, 2, 42, "fifo overrun", wire, sizeof wire));
    emit(db_encode_nack(&s, 1, DB_START, DB_NACK_ALREADY_IN_STATE, "already streaming", wire,
                        sizeof wire));
    emit(db_encode_stream_end(&s, (uint32_t)n_samples, 0, wire, sizeof wire));
    free(values);
    free(raw);
    return 0;
}
