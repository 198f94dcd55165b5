// Worker-thread generation feeding a Python iterator (see text_stream.h).
#include "text_stream.h"

namespace bitnet::python {

TextStream::TextStream(std::shared_ptr<LlamaCore> core, std::string prompt, GenerateOptions options)
    : core_(std::move(core)), prompt_(std::move(prompt)), options_(std::move(options)) {
  slot_.emplace(*core_);  // raises here, in the caller's thread, when the engine is busy
  worker_ = std::thread([this] { run(); });
}

TextStream::~TextStream() { close(); }

void TextStream::run() {
  std::optional<GenerateResult> result;
  std::exception_ptr error;
  try {
    result = core_->generate(*slot_, prompt_, options_, [this](std::string_view piece) {
      std::lock_guard lock(mutex_);
      if (cancelled_) return false;
      pieces_.emplace_back(piece);
      ready_.notify_one();
      return true;
    });
  } catch (...) {
    error = std::current_exception();
  }
  slot_.reset();  // the engine is free before the consumer learns that the stream ended
  std::lock_guard lock(mutex_);
  result_ = std::move(result);
  error_ = error;
  finished_ = true;
  ready_.notify_one();
}

std::optional<std::string> TextStream::next() {
  std::unique_lock lock(mutex_);
  ready_.wait(lock, [this] { return !pieces_.empty() || finished_; });
  if (!pieces_.empty()) {
    std::string piece = std::move(pieces_.front());
    pieces_.pop_front();
    return piece;
  }
  if (error_) {
    const std::exception_ptr e = error_;
    error_ = nullptr;  // raised once; later calls just end
    std::rethrow_exception(e);
  }
  return std::nullopt;
}

std::optional<GenerateResult> TextStream::result() {
  std::lock_guard lock(mutex_);
  return finished_ ? result_ : std::nullopt;
}

void TextStream::close() {
  {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    pieces_.clear();
  }
  if (worker_.joinable()) worker_.join();
}

}  // namespace bitnet::python
