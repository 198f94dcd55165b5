#pragma once
// Streaming generation for Python iterators: bitnet::generate() runs on a worker thread that never touches
// Python; the text pieces it delivers wait in a queue until the iterator (which releases the GIL while it waits)
// takes them. Closing the stream (or dropping it) makes the next on_text callback return false, which stops
// generation, and joins the worker, so an iterator abandoned early frees the engine and the thread.
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "llama_core.h"

namespace bitnet::python {

class TextStream {
 public:
  TextStream(std::shared_ptr<LlamaCore> core, std::string prompt, GenerateOptions options);
  ~TextStream();  // close()
  TextStream(const TextStream&) = delete;
  TextStream& operator=(const TextStream&) = delete;

  // Blocks until the next piece; nullopt at the end. Rethrows what generation threw.
  std::optional<std::string> next();
  // Stops generation (at its next piece of text) and waits for the worker. Idempotent.
  void close();
  // The finished generation's summary; nullopt while it runs (or when it failed).
  std::optional<GenerateResult> result();

 private:
  void run();

  std::shared_ptr<LlamaCore> core_;  // keeps the model alive while the worker uses it
  std::optional<LlamaCore::Slot> slot_;  // reserved by the constructor, released by the worker when it ends
  std::string prompt_;
  GenerateOptions options_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::string> pieces_;
  bool finished_ = false;   // the worker has returned
  bool cancelled_ = false;  // close() was called
  std::exception_ptr error_;
  std::optional<GenerateResult> result_;
  std::thread worker_;      // started by the constructor once the slot is reserved
};

}  // namespace bitnet::python
