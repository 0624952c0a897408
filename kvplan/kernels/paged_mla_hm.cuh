// Heads in M for the absorbed-MLA decode (KVP_MLA_HM; included by paged_mla_decode.cu, which owns the copies).
//
// 16 query heads per CTA are the M of every m16n8k16 MMA, 32 bf16 latent rows a step, 8 warps:
//   QK  S[16 heads x 8 tokens] = Q K^T: warp w owns token n-tile w & 3 and k-half w >> 2 (288 dims, 18 k-steps).
//       K is the B operand: one LDS.128 of the lane's token row (8 dims) is b0 b1 of two k-steps, so the dims of a
//       k-step are permuted (a dot product does not care) and q's A fragments use the same permutation; they sit in
//       shared memory in fragment order (one conflict-free LDS.128 per MMA, no register moves).
//   The two k-halves' scores meet in shared memory (two buffers: one CTA barrier per step). Every warp sums all 4
//   n-tiles itself and runs the same softmax (a row's max over the 4 lanes of a quad), so P's A fragments are the S
//   C fragments packed to bf16: no P tile, no second barrier, and the row sums stay per lane until the end.
//   PV  O[16 heads x 64 dims of warp w] += P V, V's B fragments by ldmatrix.trans straight from the latent rows.
// Rows sit at limits.mla_row_offset(t, hm=True): 8 consecutive rows start in 8 different 16-byte slots (ldmatrix)
// and rows 2p, 2p + 1 are 64 bytes apart (a quarter warp's K loads); tests/test_kernel_mla_hm_fragments.py checks
// the mappings and the bank conflicts lane by lane on the CPU.

static_assert(HG == 16 && TOK == 32 && NW == 8 && KVP_KVT == 1 && KVP_MLA_BULK, "heads in M: 16 heads, 32 bf16 rows");
static_assert(ROW / 16 == 36, "36 k-steps: two halves of 18");

constexpr int HM_OFF_QF = KVP_MBAR_AREA;            // q fragments: [36 k-steps][32 lanes] uint4
constexpr int HM_OFF_X = HM_OFF_QF + HG * ROW * 2;  // partial scores: [2 buffers][2 k-halves][4 n-tiles][32] float4
static_assert(HM_OFF_X + KVP_MLA_X_BYTES <= OFF_ST && KVP_MLA_X_BYTES == 2 * 8 * 32 * 16, "limits.mla_fixed_smem");

#if KVP_MLA_TMA
// TMA (KVP_MLA_TMA): a step lands as [32 rows][9 segments of 64 dims][128 bytes] with the 128-byte swizzle: the
// 16-byte chunk c of segment g (g = 9 row + block, counted from a 1,024-byte boundary) sits at chunk c ^ (g & 7).
// Eight consecutive rows at one block then fall in eight different chunks (ldmatrix), and rows 2p, 2p + 1 (whose
// g differ by an odd number) in chunks of opposite parity: the K loads take chunks 2 j + e, e alternating per
// iteration, so a quarter warp's two rows never meet. q is staged in the same permutation.
static_assert(TOK * ROWB == KVP_MLA_STAGE_BYTES && KVP_MLA_STAGE_OFFSET % 1024 == 0, "limits: TMA stages");
struct alignas(64) TmapParam {
  unsigned long long opaque[16];  // a CUtensorMap, encoded on the host (paged_mla.py)
};
// one box of the latent tensor map [tokens, 9 blocks, 64 dims] starting at token `row` into shared dst
__device__ __forceinline__ void tma_load_3d(u32 dst, const TmapParam* map, int row, u32 bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n" ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(0), "r"(0), "r"(row), "r"(bar)
      : "memory");
}
// logical 16-byte chunk of the latent row that K-load iteration i' (0..17) gives lane j: block i' >> 1, chunk
// 2 j + (i' & 1) of it
__device__ __forceinline__ int hm_chunk(int ip, int j) { return 8 * (ip >> 1) + 2 * j + (ip & 1); }
#else
__device__ __forceinline__ int hm_chunk(int ip, int j) { return 4 * ip + j; }
#endif

__device__ __forceinline__ void ldsm_x4_trans(u32 (&v)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3]) : "r"(addr));
}

// 4 consecutive dims of head h's q row (0 past Hq): dims < 512 from q_nope, the rest from q_rope
__device__ __forceinline__ uint2 hm_q4(const unsigned short* qn, const unsigned short* qr, int b, int h, int Hq,
                                       int dim) {
  if (h >= Hq) return make_uint2(0, 0);
  const size_t row = (size_t)b * Hq + h;
  return dim < RANK ? *reinterpret_cast<const uint2*>(qn + row * RANK + dim)
                    : *reinterpret_cast<const uint2*>(qr + row * KVP_MLA_ROPE + dim - RANK);
}

// q's A fragments: entry (k-step p = 2i + e, lane (r, j)) covers dims 8c + 4e .. + 3 of chunk c = 4i + j:
// {q[r] dims 0-1, q[r + 8] dims 0-1, q[r] dims 2-3, q[r + 8] dims 2-3} = a0 a1 a2 a3
__device__ __forceinline__ void hm_stage_q(unsigned char* smem, const unsigned short* qn, const unsigned short* qr,
                                           int b, int hg0, int Hq) {
  uint4* const qf = reinterpret_cast<uint4*>(smem + HM_OFF_QF);
  for (int idx = threadIdx.x; idx < (ROW / 16) * 32; idx += NW * 32) {
    const int p = idx >> 5, rr = (idx & 31) >> 2, jj = idx & 3;
    const int dim = 8 * hm_chunk(p >> 1, jj) + 4 * (p & 1);
    const uint2 lo = hm_q4(qn, qr, b, hg0 + rr, Hq, dim), hi = hm_q4(qn, qr, b, hg0 + rr + 8, Hq, dim);
    qf[idx] = make_uint4(lo.x, hi.x, lo.y, hi.y);
  }
}

// The accumulators of one CTA: O for heads r, r + 8 of 8 n-tiles (dims 64 w + 8 n + 2 j, + 1), running max and the
// lane's share of the row sums
struct HMState {
  float o[8][4];
  float m0, m1, l0, l1;
#if KVP_MLA_TMA
  int koff[9], voff[4];  // swizzled byte offsets of this lane's K chunks within a row, V chunks within a segment
#endif
};

#if KVP_MLA_TMA
__device__ __forceinline__ void hm_swizzle_offsets(HMState& st) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 2, j = lane & 3, kh = warp >> 2;
#pragma unroll
  for (int i = 0; i < 9; ++i) {  // row 8 nt + r, block b: segment 9 (8 nt + r) + b, so g & 7 = (r + b) & 7
    const int ip = 9 * kh + i, b = ip >> 1;
    st.koff[i] = 128 * b + 16 * ((hm_chunk(ip, j) & 7) ^ ((r + b) & 7));
  }
  const int m = lane >> 3;  // ldmatrix: row 16 kt + 8 (m & 1) + (lane & 7), block = warp: g & 7 = (lane + warp) & 7
#pragma unroll
  for (int u = 0; u < 4; ++u) st.voff[u] = 16 * ((2 * u + (m >> 1)) ^ (((lane & 7) + warp) & 7));
}
#endif

// One step over the stage at shared offset `tile` (this warp's bytes of it are in place: the caller waited):
// partial scores -> barrier (then `refill`, which may issue copies into the other stage) -> softmax -> PV.
template <typename Refill>
__device__ __forceinline__ void hm_step(HMState& st, unsigned char* smem, u32 sbase, int tile, int nval, int buf,
                                        float cbase, Refill refill) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 2, j = lane & 3;
  const int nt = warp & 3, kh = warp >> 2;
  const u32 FULL = 0xffffffffu;
  float4* const xs = reinterpret_cast<float4*>(smem + HM_OFF_X) + buf * 256 + lane;

  // ---- QK over this warp's token n-tile and k-half: two accumulator chains (even / odd k-steps)
  {
#if KVP_MLA_TMA
    const unsigned char* krow = smem + tile + ROWB * (8 * nt + r);
#else
    const unsigned char* krow = smem + tile + row_off(8 * nt + r) + 16 * j + 576 * kh;
#endif
    const uint4* qf = reinterpret_cast<const uint4*>(smem + HM_OFF_QF) + 18 * kh * 32 + lane;
    float sa[4] = {0.f, 0.f, 0.f, 0.f}, sb[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 9; ++i) {
#if KVP_MLA_TMA
      const uint4 kv = *reinterpret_cast<const uint4*>(krow + st.koff[i]);
#else
      const uint4 kv = *reinterpret_cast<const uint4*>(krow + 64 * i);
#endif
      const uint4 qa = qf[64 * i], qb = qf[64 * i + 32];
      mma_bf16(sa, qa.x, qa.y, qa.z, qa.w, kv.x, kv.y);
      mma_bf16(sb, qb.x, qb.y, qb.z, qb.w, kv.z, kv.w);
    }
    xs[(kh * 4 + nt) * 32] = make_float4(sa[0] + sb[0], sa[1] + sb[1], sa[2] + sb[2], sa[3] + sb[3]);
  }
  __syncthreads();  // partial scores visible; every warp is done with the previous step's stage
  refill();

  // ---- the whole step's scores in every warp: lane (r, j) holds heads r (c 0-1) and r + 8 (c 2-3) of tokens
  // 8 n + 2 j, + 1. They stay unscaled: the maxima are scaled (cbase > 0 keeps their order) and each p takes one FFMA
  float s[4][4];
#pragma unroll
  for (int n = 0; n < 4; ++n) {
    const float4 a = xs[n * 32], b = xs[(4 + n) * 32];
    s[n][0] = a.x + b.x, s[n][1] = a.y + b.y, s[n][2] = a.z + b.z, s[n][3] = a.w + b.w;
  }
  if (nval < TOK) {  // rows past the end hold stale or never-written words: their scores go by a select
#pragma unroll
    for (int n = 0; n < 4; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (8 * n + 2 * j + (c & 1) >= nval) s[n][c] = KVP_NEG_INF;
  }
  float mx0 = KVP_NEG_INF, mx1 = KVP_NEG_INF;
#pragma unroll
  for (int n = 0; n < 4; ++n) {
    mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
    mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
  }
  mx0 = fmaxf(mx0, __shfl_xor_sync(FULL, mx0, 1));
  mx1 = fmaxf(mx1, __shfl_xor_sync(FULL, mx1, 1));
  mx0 = fmaxf(mx0, __shfl_xor_sync(FULL, mx0, 2));
  mx1 = fmaxf(mx1, __shfl_xor_sync(FULL, mx1, 2));
  mx0 *= cbase, mx1 *= cbase;  // log2 domain, as the running maxima
#if KVP_MLA_LAZY
  // FA4's lazy rescale: a head's running max moves only when the step's exceeds it by more than 8 (P and the sums
  // then reach at most 2^8; every warp holds the same maxima, so all warps decide alike)
  if (__any_sync(FULL, mx0 > st.m0 + 8.f || mx1 > st.m1 + 8.f))
#endif
  {
    const float mn0 = fmaxf(st.m0, mx0), mn1 = fmaxf(st.m1, mx1);
    const float al0 = ex2(st.m0 - (mn0 == KVP_NEG_INF ? 0.f : mn0));
    const float al1 = ex2(st.m1 - (mn1 == KVP_NEG_INF ? 0.f : mn1));
    st.m0 = mn0, st.m1 = mn1;
    st.l0 *= al0, st.l1 *= al1;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      st.o[n][0] *= al0, st.o[n][1] *= al0;
      st.o[n][2] *= al1, st.o[n][3] *= al1;
    }
  }
  const float mu0 = st.m0 == KVP_NEG_INF ? 0.f : st.m0, mu1 = st.m1 == KVP_NEG_INF ? 0.f : st.m1;
  // P's A fragments of the two 16-token k-steps: a0 a1 from n-tile 2 kt, a2 a3 from n-tile 2 kt + 1
  u32 pa[2][4];
#pragma unroll
  for (int n = 0; n < 4; ++n) {
    const float p0 = ex2(fmaf(s[n][0], cbase, -mu0)), p1 = ex2(fmaf(s[n][1], cbase, -mu0));
    const float p2 = ex2(fmaf(s[n][2], cbase, -mu1)), p3 = ex2(fmaf(s[n][3], cbase, -mu1));
    st.l0 += p0 + p1, st.l1 += p2 + p3;
    pa[n >> 1][2 * (n & 1)] = pack2<true>(p0, p1);
    pa[n >> 1][2 * (n & 1) + 1] = pack2<true>(p2, p3);
  }

  // ---- PV: ldmatrix.trans lane L addresses row 8 (m & 1) + (L & 7) of the k-step at dims 8 (m >> 1) of a 16-dim
  // pair (m = L >> 3): matrices 0 1 are b0 b1 of the pair's first n-tile, 2 3 of its second
  const int m = lane >> 3;
#if KVP_MLA_TMA
  const u32 vbase = sbase + tile + ROWB * (8 * (m & 1) + (lane & 7)) + 128 * warp;
#else
  const u32 vbase = sbase + tile + row_off(8 * (m & 1) + (lane & 7)) + 2 * (64 * warp + 8 * (m >> 1));
#endif
#pragma unroll
  for (int kt = 0; kt < 2; ++kt) {
    if (16 * kt >= nval) break;  // uniform: no valid token in this k-step
    u32 keep0 = FULL, keep1 = FULL;  // rows past the end: their value words are zeroed (NaN x 0 = NaN)
    if (16 * kt + 16 > nval) {
      const int t0 = 16 * kt + 2 * j;
      keep0 = (t0 < nval ? 0xffffu : 0u) | (t0 + 1 < nval ? 0xffff0000u : 0u);
      keep1 = (t0 + 8 < nval ? 0xffffu : 0u) | (t0 + 9 < nval ? 0xffff0000u : 0u);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      u32 v[4];
#if KVP_MLA_TMA
      ldsm_x4_trans(v, vbase + kt * 16 * ROWB + st.voff[u]);
#else
      ldsm_x4_trans(v, vbase + kt * 16 * KVP_MLA_ROW_STRIDE + 32 * u);
#endif
      mma_bf16(st.o[2 * u], pa[kt][0], pa[kt][1], pa[kt][2], pa[kt][3], v[0] & keep0, v[1] & keep1);
      mma_bf16(st.o[2 * u + 1], pa[kt][0], pa[kt][1], pa[kt][2], pa[kt][3], v[2] & keep0, v[3] & keep1);
    }
  }
}

// Epilogue: lane (r, j) writes dims 64 w + 8 n + 2 j, + 1 of heads r and r + 8
__device__ __forceinline__ void hm_store(HMState& st, unsigned short* out, float* opart, float* lse, int b, int hg0,
                                         int Hq, int split, int nsplit, float vscale) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 2, j = lane & 3;
  const u32 FULL = 0xffffffffu;
  st.l0 += __shfl_xor_sync(FULL, st.l0, 1);
  st.l1 += __shfl_xor_sync(FULL, st.l1, 1);
  st.l0 += __shfl_xor_sync(FULL, st.l0, 2);
  st.l1 += __shfl_xor_sync(FULL, st.l1, 2);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int hq = hg0 + r + 8 * h;
    if (hq >= Hq) continue;
    const size_t row = (size_t)b * Hq + hq;
    const float L = h ? st.l1 : st.l0, M = h ? st.m1 : st.m0;
    const float inv = L > 0.f ? vscale / L : 0.f;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      const int d = 64 * warp + 8 * n + 2 * j;
      const float a = st.o[n][2 * h] * inv, c = st.o[n][2 * h + 1] * inv;
      if (nsplit == 1) {
        *reinterpret_cast<u32*>(out + row * RANK + d) = pack2<true>(a, c);
      } else {
        *reinterpret_cast<float2*>(opart + (row * nsplit + split) * RANK + d) = make_float2(a, c);
      }
    }
    if (nsplit > 1 && warp == 0 && j == 0) lse[row * nsplit + split] = L > 0.f ? M + log2f(L) : KVP_NEG_INF;
  }
}
