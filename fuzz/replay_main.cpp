// Replay driver for ecq's fuzz targets: linked with fuzz/<name>_fuzz.cpp into replay_<name>, so that every
// fuzz target also runs, with any compiler and under ctest, as a plain program over a saved corpus
// (the fmt / zstd convention: a corpus that once found a bug keeps testing for it).
//
// Read me first:
// - Usage: replay_<name> PATH...   Each PATH is a file or a directory; directories are walked recursively, and
//   their files replayed in sorted order so that a failure reproduces in the same place every run.
// - Each input is copied into a heap buffer of exactly its size, as libFuzzer does, so that AddressSanitizer
//   (asan preset) reports a read one byte past the end.
// - A fuzz target reports a bug by crashing or aborting; LLVMFuzzerTestOneInput's return value is ignored, as
//   libFuzzer ignores it for anything but -1 ("do not add to corpus").
// - Exit status: 0 when every input was replayed; 1 when a path could not be read; 2 for no arguments.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

#if defined(__ELF__)
// Optional in a fuzz target, as in libFuzzer: weak, so a target that does not define it still links.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
#endif

namespace {

namespace fs = std::filesystem;

// Reads `path` whole; false (with a message) when it cannot be read.
bool read_file(const fs::path& path, std::vector<char>& bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot open %s\n", path.string().c_str());
    return false;
  }
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.string().c_str());
    return false;
  }
  return true;
}

// Runs the target on one file's bytes, from a buffer of exactly that size.
bool replay_file(const fs::path& path) {
  std::vector<char> bytes;
  if (!read_file(path, bytes)) return false;
  // new[] of size 0 still returns a unique non-null pointer, as libFuzzer passes for an empty input.
  std::unique_ptr<std::uint8_t[]> exact(new std::uint8_t[bytes.size()]);
  std::copy(bytes.begin(), bytes.end(), exact.get());
  LLVMFuzzerTestOneInput(exact.get(), bytes.size());
  return true;
}

// Collects the regular files under `path` (or `path` itself), sorted; false when `path` cannot be walked.
bool collect(const fs::path& path, std::vector<fs::path>& files) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    files.push_back(path);
    return true;
  }
  if (!fs::is_directory(path, ec)) {
    std::fprintf(stderr, "replay: %s is neither a file nor a directory\n", path.string().c_str());
    return false;
  }
  std::vector<fs::path> found;
  fs::recursive_directory_iterator it(path, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) found.push_back(it->path());
  }
  if (ec) {
    std::fprintf(stderr, "replay: cannot walk %s: %s\n", path.string().c_str(), ec.message().c_str());
    return false;
  }
  std::sort(found.begin(), found.end());
  files.insert(files.end(), found.begin(), found.end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
    return 2;
  }
#if defined(__ELF__)
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
#endif

  std::size_t replayed = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> files;
    if (!collect(argv[i], files)) {
      ok = false;
      continue;
    }
    for (const fs::path& file : files) {
      if (replay_file(file)) {
        ++replayed;
      } else {
        ok = false;
      }
    }
  }
  std::printf("replay: %zu input(s) replayed from %d path(s)%s\n", replayed, argc - 1, ok ? "" : ", with errors");
  return ok ? 0 : 1;
}
