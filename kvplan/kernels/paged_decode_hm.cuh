// Heads in M (KVP_HM): paged_decode.cu's step for a warp of 16 query heads in one token slice (NWS == 1; the host
// checks), the layout FlashAttention-2 uses; the default there since session 11 (H200: MQA 64q/1kv B8 32K 87 -> 72
// us, configs.heads_in_m_default). S = Q K^T with the warp's 16 heads as the M side of m16n8k16 and 8
// tokens as N: K is the B operand, read from shared memory exactly as the default layout reads it (lane (r, j):
// token r, then r + 8, chunk j + 4i), and one 16-byte read holds the B registers of two MMAs in register order
// (the default layout moves 64 registers a step to build its A fragments). The C fragments of S are the A
// fragments of O = P V as they stand (no movmatrix), and a head's max is over 4 values and 2 lanes (the default:
// 2 values and 8 lanes). Lane (r, j) holds heads r and r + 8 of the warp's tile.
//
// Dims: a "quad" is 4 consecutive dims, dims EK * c + 4t .. + 3 of chunk c = j + 4i (t < EK / 4); a lane's
// quad (i, t) is its k indices 2j, 2j + 1 (the quad's first two dims) and 2j + 8, 2j + 9 (the last two) of one
// MMA, for q (A) and K (B) alike. Output n-tile u, column n holds dim odim(u, n): the V chunk n + 8 (u / EV) that
// lane r = n reads, dim u % EV of it. tests/test_kernel_hm_fragments.py emulates every mapping on the CPU.
// The q scaling below and the K / V reads in paged_decode.cu's KVP_HM block repeat the default step's on purpose:
// shared through a helper they changed the default layout's cubins (checked: 7 fp8 instantiations), whose schedules
// are fragile (NOTES_kernel.md v17). Session 11 tried K / V read helpers for both steps: the SASS of 56 of the 80
// default cubins (sm_80/89/90) changed, so they stay apart until a GPU can A/B the change.
#pragma once
#if KVP_HM
namespace kvp {
namespace hm {

static_assert(HPW == 16, "heads in M: one m-tile of 16 heads per warp");
constexpr int QPC = EK / 4;  // quads per 16-byte K chunk: 2 (16-bit), 4 (fp8)
constexpr int NTO = D / 8;   // output n-tiles of 8 dims
static_assert(NTO == VCH * EV, "the V chunks' dims are the output n-tiles");
static_assert(EV % 8 == 0, "store: 8 consecutive n-tiles of one column are 8 consecutive dims");

struct State {
  u32 qa[KCH][QPC][4];  // A fragments of q per quad: heads r / r + 8, first / last two dims
  float csh[2];         // score multiplier of heads r and r + 8 (log2 domain)
  float o[NTO][4];      // O rows r (0, 1) and r + 8 (2, 3), columns 2j, 2j + 1
  float m[2], l[2];     // running max; this lane's share of the sum (the 4 lanes of a head add up at the end)
};

__device__ __forceinline__ int odim(int u, int n) { return EV * (n + 8 * (u / EV)) + u % EV; }

// q rows of heads r and r + 8 of tile ht; qbase = q + (b * Hq + kvh * G) * D
__device__ __forceinline__ void load_q(State& s, const unsigned short* qbase, int G, int ht, int r, int j,
                                       float cbase) {
  const u32 FULL = 0xffffffffu;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int hl = ht * HPW + r + 8 * h;
    const bool hv = hl < G;
    const unsigned short* qrow = qbase + (size_t)(hv ? hl : 0) * D;
    float pw = 1.f;
#if KVP_KVT == 2 && KVP_QT == 1
    // fp8 cache on fp16 tensor cores: bring the bf16 head into fp16 range by a power of two
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < KCH; ++i)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const uint4 v = hv ? *reinterpret_cast<const uint4*>(qrow + (j + 4 * i) * EK + hh * 8) : make_uint4(0, 0, 0, 0);
        const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int t = 0; t < 4; ++t) amax = fmaxf(amax, fmaxf(fabsf(bf16lo(w[t])), fabsf(bf16hi(w[t]))));
      }
    amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, 2));
    if (amax > 0.f && amax < 3.0e38f) {
      int e;
      frexpf(amax, &e);
      pw = ldexpf(1.f, 14 - e);
    }
#endif
#pragma unroll
    for (int i = 0; i < KCH; ++i) {
      const int c = j + 4 * i;
#if KVP_KVT != 2
      const uint4 v = hv ? *reinterpret_cast<const uint4*>(qrow + c * EK) : make_uint4(0, 0, 0, 0);
      s.qa[i][0][h] = v.x;  // dims 8c, 8c + 1
      s.qa[i][0][2 + h] = v.y;
      s.qa[i][1][h] = v.z;  // dims 8c + 4, 8c + 5
      s.qa[i][1][2 + h] = v.w;
#else
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const uint4 v = hv ? *reinterpret_cast<const uint4*>(qrow + c * EK + hh * 8) : make_uint4(0, 0, 0, 0);
        u32 w[4] = {v.x, v.y, v.z, v.w};  // w[t]: dims 16c + 8hh + 2t, + 1: quad 2hh + t / 2
#pragma unroll
        for (int t = 0; t < 4; ++t) {
#if KVP_QT == 1
          __half2 x = __floats2half2_rn(bf16lo(w[t]) * pw, bf16hi(w[t]) * pw);
          w[t] = *reinterpret_cast<u32*>(&x);
#endif
          s.qa[i][2 * hh + t / 2][(t & 1) * 2 + h] = w[t];
        }
      }
#endif
    }
    s.csh[h] = cbase / pw;
    s.m[h] = KVP_NEG_INF;
    s.l[h] = 0.f;
  }
#pragma unroll
  for (int u = 0; u < NTO; ++u) s.o[u][0] = s.o[u][1] = s.o[u][2] = s.o[u][3] = 0.f;
}

// S of one quad for tokens r (n-tile 0, x0) and r + 8 (n-tile 1, x1) of a 16-byte K chunk pair
__device__ __forceinline__ void qk_chunk(float (&sc)[2][2][4], const u32 (&qa)[QPC][4], uint4 x0, uint4 x1) {
#if KVP_KVT != 2
  mma16816(sc[0][0], qa[0][0], qa[0][1], qa[0][2], qa[0][3], x0.x, x0.y);
  mma16816(sc[1][0], qa[0][0], qa[0][1], qa[0][2], qa[0][3], x1.x, x1.y);
  mma16816(sc[0][1], qa[1][0], qa[1][1], qa[1][2], qa[1][3], x0.z, x0.w);
  mma16816(sc[1][1], qa[1][0], qa[1][1], qa[1][2], qa[1][3], x1.z, x1.w);
#else
  const u32 w0[4] = {x0.x, x0.y, x0.z, x0.w};
  const u32 w1[4] = {x1.x, x1.y, x1.z, x1.w};
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    mma16816(sc[0][t & 1], qa[t][0], qa[t][1], qa[t][2], qa[t][3], e4m3x2_to_h2(w0[t]), e4m3x2_to_h2(w0[t] >> 16));
    mma16816(sc[1][t & 1], qa[t][0], qa[t][1], qa[t][2], qa[t][3], e4m3x2_to_h2(w1[t]), e4m3x2_to_h2(w1[t] >> 16));
  }
#endif
}

// online softmax of one 16-token step (tokens base + 2j, + 1 in n-tile 0, + 8 in n-tile 1); returns the A
// fragments of P and rescales O where a head's max moved
__device__ __forceinline__ void softmax(State& s, const float (&sc)[2][2][4], int base, int j, int c_hi,
                                        u32 (&pa)[4]) {
  const u32 FULL = 0xffffffffu;
  const int t0 = base + 2 * j;
  float p[2][4];
  float al[2];
  bool moved = false;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float t[2][2];
    float mx = KVP_NEG_INF;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float v = sc[nt][0][2 * h + e] + sc[nt][1][2 * h + e];  // the two quad chains
        t[nt][e] = t0 + 8 * nt + e < c_hi ? v * s.csh[h] : KVP_NEG_INF;
        mx = fmaxf(mx, t[nt][e]);
      }
    mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 2));
    const float mo = s.m[h];
    const float mn = (!KVP_LAZY || mx > mo + 8.f) ? fmaxf(mo, mx) : mo;
    const float mu = (mn == KVP_NEG_INF) ? 0.f : mn;
    al[h] = ex2(mo - mu);
    moved |= mn != mo;
    float sum = 0.f;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        p[nt][2 * h + e] = ex2(t[nt][e] - mu);
        sum += p[nt][2 * h + e];
      }
    s.l[h] = s.l[h] * al[h] + sum;
    s.m[h] = mn;
  }
  if (!KVP_LAZY || __any_sync(FULL, moved)) {
#pragma unroll
    for (int u = 0; u < NTO; ++u) {
      s.o[u][0] *= al[0];
      s.o[u][1] *= al[0];
      s.o[u][2] *= al[1];
      s.o[u][3] *= al[1];
    }
  }
  // rows r / r + 8, tokens 2j, 2j + 1 (k 2j..) and 8 + 2j, 9 + 2j (k 2j + 8..)
  pa[0] = pack_mma(p[0][0], p[0][1]);
  pa[1] = pack_mma(p[0][2], p[0][3]);
  pa[2] = pack_mma(p[1][0], p[1][1]);
  pa[3] = pack_mma(p[1][2], p[1][3]);
}

// O += P V for V chunk i: y0..y3 = rows 2j, 2j + 1, 2j + 8, 2j + 9 of chunk r + 8i
__device__ __forceinline__ void pv_chunk(State& s, const u32 (&pa)[4], int i, uint4 y0, uint4 y1, uint4 y2,
                                         uint4 y3) {
  const u32 w0[4] = {y0.x, y0.y, y0.z, y0.w};
  const u32 w1[4] = {y1.x, y1.y, y1.z, y1.w};
  const u32 w2[4] = {y2.x, y2.y, y2.z, y2.w};
  const u32 w3[4] = {y3.x, y3.y, y3.z, y3.w};
#if KVP_KVT != 2
#pragma unroll
  for (int w = 0; w < 4; ++w)
#pragma unroll
    for (int lh = 0; lh < 2; ++lh) {  // dims 2w (low halves) and 2w + 1 (high halves) of the chunk
      const u32 sel = lh ? 0x7632 : 0x5410;
      mma16816(s.o[i * EV + 2 * w + lh], pa[0], pa[1], pa[2], pa[3], prmt(w0[w], w1[w], sel), prmt(w2[w], w3[w], sel));
    }
#else
#pragma unroll
  for (int w = 0; w < VCW / 4; ++w)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {  // dims 4w + 2hh, + 1 of the chunk
      const u32 sel = hh ? 0x7362 : 0x5140;
      const u32 e = prmt(w0[w], w1[w], sel), f = prmt(w2[w], w3[w], sel);
      const int u = i * EV + 4 * w + 2 * hh;
      mma16816(s.o[u], pa[0], pa[1], pa[2], pa[3], e4m3x2_to_h2(e), e4m3x2_to_h2(f));
      mma16816(s.o[u + 1], pa[0], pa[1], pa[2], pa[3], e4m3x2_to_h2(e >> 16), e4m3x2_to_h2(f >> 16));
    }
#endif
}

// heads r and r + 8 straight from registers (one slice): bf16/fp16 out, or fp32 partials + lse for the merge
__device__ __forceinline__ void store(State& s, int G, int ht, int r, int j, size_t row0, int nsplit, int split,
                                      float vscale, unsigned short* out, float* opart, float* lse) {
  const u32 FULL = 0xffffffffu;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float x = s.l[h];
    x += __shfl_xor_sync(FULL, x, 1);
    x += __shfl_xor_sync(FULL, x, 2);
    s.l[h] = x;
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int hl = ht * HPW + r + 8 * h;
    if (hl >= G) continue;
    const size_t rowq = row0 + hl;
    const float L = s.l[h];
    const float inv = L > 0.f ? vscale / L : 0.f;
    // column n of n-tiles u .. u + 7 (u % 8 == 0; EV % 8 == 0) is dims odim(u, n) .. + 7: 16- and 32-byte stores
#pragma unroll
    for (int u = 0; u < NTO; u += 8)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int d = odim(u, 2 * j + e);
        float v[8];
#pragma unroll
        for (int t = 0; t < 8; ++t) v[t] = s.o[u + t][2 * h + e] * inv;
        store_dims8(out, opart, rowq, nsplit, split, d, v);
      }
    if (nsplit > 1 && j == 0) lse[rowq * nsplit + split] = L > 0.f ? s.m[h] + log2f(L) : KVP_NEG_INF;
  }
}

}  // namespace hm
}  // namespace kvp
#endif  // KVP_HM
