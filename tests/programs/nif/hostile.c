/* Hostile values a NIF's callers can pass, given to llama.h from C: a C caller cannot catch a C++
 * exception, so an exception leaving llama.h, an abort or a stack overflow ends the process here
 * (tests/test_hostile_api.py runs each value in its own loader process and in the Erlang NIF).
 * The C++ API of llama-common (JSON schemas, chat templates) is reached through llama_nif.cpp,
 * which catches its exceptions as any C++ NIF would. */
#define LNIF_BUILD 1 /* lnif_hostile is exported (dllexport on Windows), as in llama_nif.cpp */
#include "llama_nif.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

/* llama_nif.cpp: the model behind an lnif_model, and llama-common's half of the calls below */
const struct llama_model * hostile_model(const lnif_model * m);
struct llama_context * hostile_context(const lnif_model * m);
int hostile_common(lnif_model * m, const char * kind, const char * value, char * out, int cap);

static int report(char * out, int cap, int is_error, const char * text) {
    snprintf(out, (size_t) cap, "%s", text);
    return is_error;
}

/* decodes three tokens of a prompt; only the last one gets logits */
static int decode_prompt(struct llama_context * ctx, const struct llama_vocab * vocab) {
    llama_memory_clear(llama_get_memory(ctx), 1);
    llama_token toks[3] = {llama_vocab_bos(vocab), 1, 2};
    if (toks[0] == LLAMA_TOKEN_NULL) toks[0] = 0;
    return llama_decode(ctx, llama_batch_get_one(toks, 3));
}

/* how many of the n_vocab tokens the grammar sampler g allows now (0: its state is broken); arr
 * holds the candidates after the grammar's apply */
static int allowed_now(struct llama_sampler * g, llama_token_data * cand, int n_vocab, llama_token_data_array * arr) {
    for (int i = 0; i < n_vocab; ++i) cand[i] = (llama_token_data){i, 1.0f, 0.0f};
    *arr = (llama_token_data_array){cand, (size_t) n_vocab, -1, 0};
    llama_sampler_apply(g, arr);
    int count = 0;
    for (int i = 0; i < n_vocab; ++i) count += isfinite(arr->data[i].logit) != 0;
    return count;
}

int lnif_hostile(lnif_model * m, const char * kind, const char * value, char * out, int cap) {
    if (!m || !kind || !value || !out || cap < 2) return -1;
    out[0] = 0;
    const struct llama_model * model = hostile_model(m);
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    struct llama_context * ctx = hostile_context(m);
    /* "n_vocab": the first id past the vocabulary */
    const int id = strcmp(value, "n_vocab") == 0 ? llama_vocab_n_tokens(vocab) : atoi(value);
    char buf[256], text[512];

    if (strcmp(kind, "piece") == 0) {  /* a token id from the caller */
        const int32_t n = llama_token_to_piece(vocab, id, buf, (int32_t) sizeof buf, 0, 1);
        snprintf(text, sizeof text, "llama_token_to_piece returned %d", (int) n);
        return report(out, cap, n < 0, text);
    }
    if (strcmp(kind, "detokenize") == 0) {
        const llama_token tok = id;
        const int32_t n = llama_detokenize(vocab, &tok, 1, buf, (int32_t) sizeof buf, 0, 1);
        snprintf(text, sizeof text, "llama_detokenize returned %d", (int) n);
        return report(out, cap, n < 0, text);
    }
    if (strcmp(kind, "text") == 0) {
        const char * t = llama_vocab_get_text(vocab, id);
        return report(out, cap, t == NULL, t ? t : "llama_vocab_get_text returned NULL");
    }
    if (strcmp(kind, "score") == 0) {
        const float s = llama_vocab_get_score(vocab, id);
        snprintf(text, sizeof text, "llama_vocab_get_score returned %g", s);
        return report(out, cap, isnan(s), text);
    }
    if (strcmp(kind, "attr") == 0) {
        const enum llama_token_attr a = llama_vocab_get_attr(vocab, id);
        const int is_control = llama_vocab_is_control(vocab, id);
        snprintf(text, sizeof text, "llama_vocab_get_attr returned %d, is_control %d", (int) a, is_control);
        return report(out, cap, a == LLAMA_TOKEN_ATTR_UNDEFINED, text);
    }
    if (!ctx) return report(out, cap, 1, "the model was opened without a context");
    if (strcmp(kind, "sample") == 0) {  /* an output index from the caller */
        if (decode_prompt(ctx, vocab) != 0) return report(out, cap, 1, "llama_decode failed");
        struct llama_sampler * greedy = llama_sampler_init_greedy();
        const llama_token t = llama_sampler_sample(greedy, ctx, id);
        llama_sampler_free(greedy);
        snprintf(text, sizeof text, "llama_sampler_sample returned %d", (int) t);
        return report(out, cap, t == LLAMA_TOKEN_NULL, text);
    }
    if (strcmp(kind, "seq") == 0) {  /* a sequence id from the caller */
        if (decode_prompt(ctx, vocab) != 0) return report(out, cap, 1, "llama_decode failed");
        llama_memory_t mem = llama_get_memory(ctx);
        const llama_pos max = llama_memory_seq_pos_max(mem, id);
        const llama_pos min = llama_memory_seq_pos_min(mem, id);
        llama_memory_seq_cp(mem, 0, id, -1, -1);
        llama_memory_seq_cp(mem, id, 0, -1, -1);
        llama_memory_seq_add(mem, id, 0, -1, 1);
        llama_memory_seq_div(mem, id, 0, -1, 2);
        const int removed = llama_memory_seq_rm(mem, id, -1, -1);
        llama_memory_seq_keep(mem, id);
        snprintf(text, sizeof text, "seq_pos_min %d, seq_pos_max %d, seq_rm %d", (int) min, (int) max, removed);
        return report(out, cap, !removed, text);
    }
    if (strcmp(kind, "grammar") == 0 || strcmp(kind, "trigger") == 0) {  /* a GBNF grammar, a trigger regex */
        const int lazy = strcmp(kind, "trigger") == 0;
        const char * patterns[1] = {value};
        struct llama_sampler * g = lazy ? llama_sampler_init_grammar_lazy_patterns(vocab, "root ::= [a-z]+", "root",
                                                                                   patterns, 1, NULL, 0)
                                        : llama_sampler_init_grammar(vocab, value, "root");
        if (!g) return report(out, cap, 1, "the grammar sampler was refused (NULL)");
        struct llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        llama_sampler_chain_add(chain, g);
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        int n = 0;
        if (decode_prompt(ctx, vocab) == 0) {
            for (; n < 4; ++n) {  /* a few tokens under it */
                llama_token t = llama_sampler_sample(chain, ctx, -1);
                if (t == LLAMA_TOKEN_NULL || llama_vocab_is_eog(vocab, t)) break;
                if (llama_decode(ctx, llama_batch_get_one(&t, 1)) != 0) break;
            }
        }
        llama_sampler_free(chain);
        snprintf(text, sizeof text, "the grammar sampler was accepted, %d tokens sampled", n);
        return report(out, cap, 0, text);
    }
    if (strcmp(kind, "accept") == 0) {  /* a caller's token accepted by a grammar sampler (a void call) */
        /* value: a token id, "n_vocab", "eos", "disallowed" (a token whose piece has no a-z), or
         * "allowed" (the token the grammar samples first) */
        struct llama_sampler * g = llama_sampler_init_grammar(vocab, "root ::= [a-z] [0-9]+", "root");
        if (!g) return report(out, cap, 1, "the grammar was refused");
        const int n_vocab = llama_vocab_n_tokens(vocab);
        llama_token_data * cand = (llama_token_data *) malloc(sizeof(llama_token_data) * (size_t) n_vocab);
        llama_token_data_array arr;
        const int before = allowed_now(g, cand, n_vocab, &arr);
        llama_token tok = id;
        if (strcmp(value, "eos") == 0) tok = llama_vocab_eos(vocab);
        if (strcmp(value, "allowed") == 0 || strcmp(value, "disallowed") == 0) {
            const int want = strcmp(value, "allowed") == 0;
            tok = LLAMA_TOKEN_NULL;
            for (int i = 0; i < n_vocab && tok == LLAMA_TOKEN_NULL; ++i) {
                char piece[64];
                const int n = llama_token_to_piece(vocab, i, piece, (int32_t) sizeof piece, 0, 0);
                if (n <= 0) continue;
                int letters = 1;
                for (int c = 0; c < n; ++c) letters &= piece[c] >= 'a' && piece[c] <= 'z';
                if (want ? (n == 1 && letters && isfinite(arr.data[i].logit)) : !isfinite(arr.data[i].logit)) tok = i;
            }
        }
        llama_sampler_accept(g, tok);
        const int after = allowed_now(g, cand, n_vocab, &arr);
        free(cand);
        llama_sampler_free(g);
        snprintf(text, sizeof text, "accept(%d): the grammar allowed %d tokens before, %d after", (int) tok, before, after);
        /* refused: the state is unchanged; taken: it still allows something (a valid state) */
        return report(out, cap, after == before ? 1 : 0, text);
    }
    if (strcmp(kind, "decode_seq") == 0 || strcmp(kind, "decode_nseq") == 0) {
        /* one token with no positions (pos NULL: llama.h generates them from the first seq id):
         * decode_seq: a caller's seq id; decode_nseq: a caller's count of seq ids (n_seq_id) */
        llama_memory_clear(llama_get_memory(ctx), 1);
        struct llama_batch batch = llama_batch_init(1, 0, 1);
        llama_pos * pos = batch.pos;
        batch.n_tokens = 1;
        batch.token[0] = 1;
        batch.pos = NULL;
        batch.n_seq_id[0] = strcmp(kind, "decode_nseq") == 0 ? id : 1;
        batch.seq_id[0][0] = strcmp(kind, "decode_seq") == 0 ? id : 0;
        batch.logits[0] = 1;
        const int32_t ret = llama_decode(ctx, batch);
        batch.pos = pos;
        llama_batch_free(batch);
        snprintf(text, sizeof text, "llama_decode returned %d", (int) ret);
        return report(out, cap, ret != 0, text);
    }
    if (strcmp(kind, "decode_many") == 0) {  /* a caller's token count; "n_batch+1": one past the batch */
        const int n = strcmp(value, "n_batch+1") == 0 ? (int) llama_n_batch(ctx) + 1 : id;
        if (n < 1 || n > 1000000) return report(out, cap, 1, "decode_many: the count is out of this test's range");
        llama_token * toks = (llama_token *) calloc((size_t) n, sizeof(llama_token));
        for (int i = 0; i < n; ++i) toks[i] = 1;
        llama_memory_clear(llama_get_memory(ctx), 1);
        const int32_t ret = llama_decode(ctx, llama_batch_get_one(toks, n));
        free(toks);
        snprintf(text, sizeof text, "llama_decode of %d tokens (n_batch %u) returned %d", n, llama_n_batch(ctx), (int) ret);
        return report(out, cap, ret != 0, text);
    }
    if (strcmp(kind, "seq_div") == 0) {  /* a caller's divisor (a void call: refused = positions kept) */
        if (decode_prompt(ctx, vocab) != 0) return report(out, cap, 1, "llama_decode failed");
        llama_memory_t mem = llama_get_memory(ctx);
        const llama_pos before = llama_memory_seq_pos_max(mem, 0);
        llama_memory_seq_div(mem, 0, 0, -1, id);
        const llama_pos after = llama_memory_seq_pos_max(mem, 0);
        snprintf(text, sizeof text, "seq_div by %d: seq_pos_max %d -> %d", id, (int) before, (int) after);
        return report(out, cap, after == before, text);
    }
    if (strcmp(kind, "candidates") == 0) {  /* a caller's candidate array of `id` tokens through CPU samplers */
        if (id < 0 || id > 64) return report(out, cap, 1, "candidates: the count is out of this test's range");
        llama_token_data cand[64];
        for (int i = 0; i < id; ++i) cand[i] = (llama_token_data){i, (float) i, 0.0f};
        llama_token_data_array arr = {id ? cand : NULL, (size_t) id, -1, 0};
        struct llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(0.9f, 1));
        llama_sampler_chain_add(chain, llama_sampler_init_min_p(0.05f, 1));
        llama_sampler_chain_add(chain, llama_sampler_init_typical(0.9f, 1));
        llama_sampler_chain_add(chain, llama_sampler_init_xtc(0.5f, 0.1f, 1, 42));
        llama_sampler_chain_add(chain, llama_sampler_init_dist(42));
        llama_sampler_apply(chain, &arr);
        llama_sampler_free(chain);
        snprintf(text, sizeof text, "%d candidates: selected %lld", id, (long long) arr.selected);
        return report(out, cap, arr.selected < 0, text);
    }
    if (strcmp(kind, "chain") == 0) {  /* a caller's sampler chain: "top_k" alone selects nothing */
        if (decode_prompt(ctx, vocab) != 0) return report(out, cap, 1, "llama_decode failed");
        struct llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        llama_sampler_chain_add(chain, llama_sampler_init_top_k(5));
        if (strcmp(value, "top_k,greedy") == 0) llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        const llama_token t = llama_sampler_sample(chain, ctx, -1);
        llama_sampler_free(chain);
        snprintf(text, sizeof text, "llama_sampler_sample (%s) returned %d", value, (int) t);
        return report(out, cap, t == LLAMA_TOKEN_NULL, text);
    }
    if (strcmp(kind, "candidate") == 0) {  /* a caller's candidate id under a grammar: outside the vocabulary, never allowed */
        struct llama_sampler * g = llama_sampler_init_grammar(vocab, "root ::= [^\\x00]+", "root");
        if (!g) return report(out, cap, 1, "the grammar was refused");
        llama_token_data cand[2] = {{1, 1.0f, 0.0f}, {id, 1.0f, 0.0f}};
        if (strcmp(value, "letter") == 0) {  /* the first token whose piece is one letter a-z */
            cand[1].id = LLAMA_TOKEN_NULL;
            for (int i = 0; i < llama_vocab_n_tokens(vocab) && cand[1].id == LLAMA_TOKEN_NULL; ++i) {
                char piece[8];
                if (llama_token_to_piece(vocab, i, piece, (int32_t) sizeof piece, 0, 0) == 1 && piece[0] >= 'a' &&
                    piece[0] <= 'z') cand[1].id = i;
            }
        }
        llama_token_data_array arr = {cand, 2, -1, 0};
        llama_sampler_apply(g, &arr);
        llama_sampler_free(g);
        snprintf(text, sizeof text, "candidate %d: logit %g after the grammar", (int) cand[1].id, cand[1].logit);
        return report(out, cap, !isfinite(cand[1].logit), text);
    }
    if (strcmp(kind, "grammar_root") == 0) {  /* a grammar with grammar_root NULL ("NULL") or a name */
        struct llama_sampler * g = llama_sampler_init_grammar(vocab, "root ::= [a-z]+", strcmp(value, "NULL") ? value : NULL);
        llama_sampler_free(g);
        return report(out, cap, g == NULL, g ? "the grammar sampler was accepted" : "the grammar sampler was refused (NULL)");
    }
    if (strcmp(kind, "batch_init") == 0) {  /* a caller's batch sizes "n_tokens,embd,n_seq_max" */
        int n_tokens = 0, embd = 0, n_seq_max = 0;
        if (sscanf(value, "%d,%d,%d", &n_tokens, &embd, &n_seq_max) != 3) return report(out, cap, 1, "bad value");
        struct llama_batch b = llama_batch_init(n_tokens, embd, n_seq_max);
        const int empty = !b.token && !b.embd && !b.pos && !b.n_seq_id && !b.seq_id && !b.logits;
        if (!empty) {  /* use every slot, as a caller would */
            for (int i = 0; i < n_tokens; ++i) {
                if (b.token) b.token[i] = 1;
                b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][n_seq_max - 1] = 0; b.logits[i] = 0;
            }
        }
        llama_batch_free(b);
        snprintf(text, sizeof text, "llama_batch_init(%s): %s", value, empty ? "the empty batch" : "allocated");
        return report(out, cap, empty, text);
    }
    if (strcmp(kind, "chat_role") == 0) {  /* a message whose role is NULL ("NULL") or a name */
        struct llama_chat_message msg[2] = {{"system", "be brief"}, {strcmp(value, "NULL") ? value : NULL, "hi"}};
        char chat[512];
        const int32_t n = llama_chat_apply_template("chatml", msg, 2, 1, chat, (int32_t) sizeof chat);
        snprintf(text, sizeof text, "llama_chat_apply_template returned %d", (int) n);
        return report(out, cap, n < 0, text);
    }
    if (strcmp(kind, "infill") == 0) {  /* a caller's candidate id through the infill sampler (a void call) */
        struct llama_sampler * s = llama_sampler_init_infill(vocab);
        /* two ordinary tokens (no end of generation, which would end the sampler's work early) */
        llama_token_data cand[3] = {{300, 2.0f, 0.0f}, {301, 1.0f, 0.0f}, {id, 1.5f, 0.0f}};
        llama_token_data_array arr = {cand, 3, -1, 0};
        llama_sampler_apply(s, &arr);
        llama_sampler_free(s);
        /* surviving is the point; the verdict says whether the id was outside the vocabulary */
        const int outside = id < 0 || id >= llama_vocab_n_tokens(vocab);
        snprintf(text, sizeof text, "infill over candidate %d: %zu candidates left", id, arr.size);
        return report(out, cap, outside, text);
    }
    return hostile_common(m, kind, value, out, cap);
}
