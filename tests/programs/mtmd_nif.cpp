// A NIF-shaped shared object over the static libmtmd + libllama + ggml archives: it writes a tiny
// random text model and a tiny random vision projector, then encodes a real image file into
// embeddings with libmtmd. It proves that the packaged libmtmd.a links into one self-contained
// .so and works on the CPU, and that bad input comes back as an error code, not a dead process.
//
// C ABI (the only exported symbols; everything else has hidden visibility or internal linkage):
//
//   int mnif_write_models(const char * text_path, const char * mmproj_path, unsigned seed,
//                         char * err, int err_cap);
//   int mnif_write_projector(const char * mmproj_path, unsigned seed, int n_embd_text,
//                            char * err, int err_cap);
//   int mnif_encode_image(const char * text_path, const char * mmproj_path, const char * image_path,
//                         int n_threads, double * out_stats, char * err, int err_cap);
//
// Every function returns 0 on success or one of the negative MNIF_E* codes below, and then writes
// a NUL-terminated message into err (truncated to err_cap bytes; err may be NULL). No C++
// exception crosses the boundary. out_stats receives 5 doubles:
//   [0] number of image tokens  [1] embedding width  [2] sum of all values
//   [3] sum of squares          [4] number of non-finite values (a healthy projector gives 0)
//
// Logging: ggml, llama and mtmd log through one callback that stays silent unless the environment
// variable MNIF_VERBOSE is set; the first error line logged during a failed call is appended to
// the message, so "mismatch between text model (n_embd = 64) and mmproj (n_embd = 48)" reaches
// the caller. Projector files go to libmtmd as they are (no checks of our own), so the tests see
// what the package does with a bad file. A GGML_ASSERT/GGML_ABORT that is still reached ends the
// process (ggml calls abort()); an abort callback replaces ggml's default fork()+gdb backtrace
// with one line on stderr. docs/mtmd.md lists the paths.
//
// Built by tests/programs/CMakeLists.txt (CMakeDeps, target `mtmd`).
#include "../../test_package/src/tiny_model.h"
#include "tiny_projector.h"

#include "ggml.h"
#include "gguf.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#define MNIF_API extern "C" __attribute__((visibility("default")))

enum {
    MNIF_OK = 0,
    MNIF_EINVAL = -1,      // a NULL/empty path, NULL out_stats, a bad n_embd_text
    MNIF_EWRITE = -2,      // a model file could not be written
    MNIF_ETEXT = -3,       // the text model did not load
    MNIF_EPROJ = -4,       // the projector was rejected (this file's checks or mtmd_init_from_file)
    MNIF_EIMAGE = -5,      // the image file is missing, unreadable, or not a decodable image
    MNIF_ETOKENIZE = -6,   // mtmd_tokenize failed
    MNIF_ENOCHUNK = -7,    // tokenization produced no image chunk
    MNIF_EENCODE = -8,     // mtmd_encode_chunk failed or returned no embeddings
    MNIF_EEXCEPTION = -9,  // a C++ exception escaped libmtmd/libllama (caught here)
};

namespace {

thread_local std::string t_log_error;  // first error line logged during the current call

void log_callback(ggml_log_level level, const char * text, void *) {
    if (!text) return;
    if (level == GGML_LOG_LEVEL_ERROR && t_log_error.empty()) {
        std::string line(text);
        while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) t_log_error = line;
    }
    static const bool verbose = std::getenv("MNIF_VERBOSE") != nullptr;
    if (verbose) std::fputs(text, stderr);
}

// GGML_ASSERT/GGML_ABORT cannot be turned into an error: abort() follows the callback. Without a
// callback ggml prints a backtrace by fork()ing and exec()ing gdb to attach to this process (the
// BEAM, in a real NIF); with one it only says what failed, and the process still ends.
void abort_callback(const char * message) {
    std::fprintf(stderr, "mtmd_nif: ggml abort: %s\n", message ? message : "(no message)");
    std::fflush(stderr);
}

void init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        ggml_set_abort_callback(abort_callback);
        llama_log_set(log_callback, nullptr);        // llama + ggml (ggml_log_set)
        mtmd_helper_log_set(log_callback, nullptr);  // mtmd helper + clip/mtmd (mtmd_log_set)
        llama_backend_init();
    });
}

// one call's error reporting: code + message into the caller's buffer
struct Call {
    char * err;
    int err_cap;

    Call(char * e, int cap) : err(e), err_cap(cap) {
        t_log_error.clear();
        if (err && err_cap > 0) err[0] = '\0';
    }
    int fail(int code, const std::string & what) const {
        std::string msg = what;
        if (!t_log_error.empty()) msg += " [" + t_log_error + "]";
        if (err && err_cap > 0) std::snprintf(err, (size_t) err_cap, "%s", msg.c_str());
        return code;
    }
};

template <typename F> int guarded(const Call & call, F && f) {
    try {
        return f();
    } catch (const std::exception & e) {
        return call.fail(MNIF_EEXCEPTION, std::string("exception: ") + e.what());
    } catch (...) {
        return call.fail(MNIF_EEXCEPTION, "unknown exception");
    }
}

bool nonempty(const char * s) { return s && *s; }

bool regular_file(const char * path, long long * size) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (size) *size = (long long) st.st_size;
    return true;
}

struct ModelDeleter {
    void operator()(llama_model * m) const { llama_model_free(m); }
};
using model_ptr = std::unique_ptr<llama_model, ModelDeleter>;

struct GgufDeleter {
    void operator()(gguf_context * g) const { gguf_free(g); }
};
struct GgmlDeleter {
    void operator()(ggml_context * c) const { ggml_free(c); }
};

}  // namespace

MNIF_API int mnif_write_projector(const char * mmproj_path, unsigned seed, int n_embd_text, char * err,
                                  int err_cap) {
    init_once();
    Call call(err, err_cap);
    if (!nonempty(mmproj_path) || n_embd_text <= 0) return call.fail(MNIF_EINVAL, "invalid argument");
    return guarded(call, [&] {
        if (!write_tiny_projector(mmproj_path, seed, n_embd_text)) {
            return call.fail(MNIF_EWRITE, std::string("cannot write projector '") + mmproj_path + "'");
        }
        return (int) MNIF_OK;
    });
}

MNIF_API int mnif_write_models(const char * text_path, const char * mmproj_path, unsigned seed, char * err,
                               int err_cap) {
    init_once();
    Call call(err, err_cap);
    if (!nonempty(text_path) || !nonempty(mmproj_path)) return call.fail(MNIF_EINVAL, "invalid argument");
    return guarded(call, [&] {
        if (!write_tiny_llama(text_path, seed)) {
            return call.fail(MNIF_EWRITE, std::string("cannot write text model '") + text_path + "'");
        }
        // the text model's width, read back rather than assumed (tiny_model.cpp: N_EMBD = 64)
        int n_embd = 0;
        {
            ggml_context * meta = nullptr;
            gguf_init_params gp = {true, &meta};
            std::unique_ptr<gguf_context, GgufDeleter> g(gguf_init_from_file(text_path, gp));
            std::unique_ptr<ggml_context, GgmlDeleter> owner(meta);
            const int64_t id = g ? gguf_find_key(g.get(), "llama.embedding_length") : -1;
            if (id >= 0 && gguf_get_kv_type(g.get(), id) == GGUF_TYPE_UINT32) n_embd = (int) gguf_get_val_u32(g.get(), id);
        }
        if (n_embd <= 0) return call.fail(MNIF_EWRITE, "the written text model has no llama.embedding_length");
        // a different stream for the projector, so its weights do not repeat the text model's
        if (!write_tiny_projector(mmproj_path, seed ^ 0x9e3779b9u, n_embd)) {
            return call.fail(MNIF_EWRITE, std::string("cannot write projector '") + mmproj_path + "'");
        }
        return (int) MNIF_OK;
    });
}

MNIF_API int mnif_encode_image(const char * text_path, const char * mmproj_path, const char * image_path,
                               int n_threads, double * out_stats, char * err, int err_cap) {
    init_once();
    Call call(err, err_cap);
    if (!nonempty(text_path) || !nonempty(mmproj_path) || !nonempty(image_path) || !out_stats) {
        return call.fail(MNIF_EINVAL, "invalid argument");
    }
    return guarded(call, [&]() -> int {
        for (int i = 0; i < 5; ++i) out_stats[i] = 0.0;
        if (n_threads <= 0) n_threads = 1;
        if (n_threads > 256) n_threads = 256;

        // cheap checks first: nothing loads when the image cannot be read
        long long image_size = 0;
        if (!regular_file(image_path, &image_size) || image_size == 0) {
            return call.fail(MNIF_EIMAGE, std::string("image '") + image_path + "' is missing, empty or not a file");
        }
        if (!regular_file(text_path, nullptr)) {
            return call.fail(MNIF_ETEXT, std::string("text model '") + text_path + "' not found");
        }

        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers = 0;
        model_ptr model(llama_model_load_from_file(text_path, mp));
        if (!model) return call.fail(MNIF_ETEXT, std::string("failed to load text model '") + text_path + "'");

        mtmd_context_params cp = mtmd_context_params_default();
        cp.use_gpu = false;
        cp.print_timings = false;
        cp.n_threads = n_threads;
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
        mtmd::context_ptr ctx(mtmd_init_from_file(mmproj_path, model.get(), cp));
        if (!ctx) return call.fail(MNIF_EPROJ, std::string("mtmd_init_from_file rejected '") + mmproj_path + "'");
        if (!mtmd_support_vision(ctx.get())) return call.fail(MNIF_EPROJ, "the projector has no vision encoder");

        mtmd_helper_bitmap_wrapper w =
            mtmd_helper_bitmap_init_from_file(ctx.get(), image_path, false, mtmd_helper_init_opt_default());
        mtmd::bitmap_ptr bitmap(w.bitmap);
        if (w.video_ctx) {  // MTMD_VIDEO builds only: the file decoded as a video
            bitmap.reset();
            mtmd_helper_video_free(w.video_ctx);
            return call.fail(MNIF_EIMAGE, std::string("'") + image_path + "' is a video, not an image");
        }
        if (!bitmap) return call.fail(MNIF_EIMAGE, std::string("cannot decode image '") + image_path + "'");
        if (mtmd_bitmap_is_audio(bitmap.get())) {
            return call.fail(MNIF_EIMAGE, std::string("'") + image_path + "' is audio, not an image");
        }

        const std::string prompt = std::string("describe ") + mtmd_default_marker() + " in one word";
        mtmd_input_text text = {prompt.c_str(), prompt.size(), /*add_special=*/ true, /*parse_special=*/ true};
        mtmd::input_chunks_ptr chunks(mtmd_input_chunks_init());
        if (!chunks) return call.fail(MNIF_ETOKENIZE, "mtmd_input_chunks_init failed");
        const mtmd_bitmap * bitmaps[1] = {bitmap.get()};
        const int32_t rc = mtmd_tokenize(ctx.get(), chunks.get(), &text, bitmaps, 1);
        if (rc != 0) return call.fail(MNIF_ETOKENIZE, "mtmd_tokenize returned " + std::to_string(rc));

        const mtmd_input_chunk * image = nullptr;
        for (size_t i = 0; i < mtmd_input_chunks_size(chunks.get()); ++i) {
            const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks.get(), i);
            if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_IMAGE) {
                image = c;
                break;
            }
        }
        if (!image) return call.fail(MNIF_ENOCHUNK, "tokenization produced no image chunk");

        if (mtmd_encode_chunk(ctx.get(), image) != 0) return call.fail(MNIF_EENCODE, "mtmd_encode_chunk failed");
        const float * embd = mtmd_get_output_embd(ctx.get());
        const size_t n_tokens = mtmd_input_chunk_get_n_tokens(image);
        const int n_embd = llama_model_n_embd_inp(model.get());  // == the projector's width (mtmd checked)
        if (!embd || n_tokens == 0 || n_embd <= 0) return call.fail(MNIF_EENCODE, "no embeddings");

        double sum = 0.0, sum2 = 0.0, bad = 0.0;
        for (size_t i = 0; i < n_tokens * (size_t) n_embd; ++i) {
            const float v = embd[i];
            if (!std::isfinite(v)) {
                bad += 1.0;
                continue;
            }
            sum += v;
            sum2 += (double) v * v;
        }
        out_stats[0] = (double) n_tokens;
        out_stats[1] = (double) n_embd;
        out_stats[2] = sum;
        out_stats[3] = sum2;
        out_stats[4] = bad;
        return (int) MNIF_OK;
    });
}
