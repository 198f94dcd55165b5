// The parts every tokenizer shares: vocabulary look-up, special-token splitting, decoding, end-of-generation ids.
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/tokenizer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <unordered_map>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace bitnet {

struct Tokenizer::Index {
  std::unordered_map<std::string, int32_t> by_text;
  // Special tokens by first byte, longest first: the scan takes the first that matches (leftmost-longest, as
  // Hugging Face's added-token matcher does).
  std::array<std::vector<int32_t>, 256> specials;
};

namespace {
uint64_t next_instance() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}
}  // namespace

Tokenizer::~Tokenizer() = default;

Tokenizer::Tokenizer(TokenizerKind kind, tokenizer::VocabData&& v)
    : kind_(kind),
      tokens_(std::move(v.tokens)),
      types_(std::move(v.types)),
      bos_(v.bos),
      eos_(v.eos),
      eot_(v.eot),
      unk_(v.unk),
      add_bos_(v.add_bos),
      add_space_prefix_(v.add_space_prefix),
      chat_template_(std::move(v.chat_template)),
      source_(std::move(v.source)),
      pre_name_(std::move(v.pre_name)),
      instance_(next_instance()) {
  auto index = std::make_shared<Index>();
  index->by_text.reserve(tokens_.size());
  for (int32_t id = 0; id < static_cast<int32_t>(tokens_.size()); ++id) {
    index->by_text.emplace(tokens_[id], id);  // a duplicate string keeps its lowest id
    const TokenType t = types_[id];
    if (t == TokenType::unused) unused_.push_back(id);  // ascending: id runs in order
    if ((t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) && !tokens_[id].empty())
      index->specials[static_cast<uint8_t>(tokens_[id][0])].push_back(id);
  }
  for (auto& list : index->specials)
    std::stable_sort(list.begin(), list.end(),
                     [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });
  index_ = std::move(index);
  // End of generation: the ids the file names, plus the end-of-turn tokens of the chat formats we know.
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id >= 0) eog_.push_back(id);
  for (const char* text : {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "<|end|>",
                           "<end_of_turn>"}) {
    const auto it = index_->by_text.find(text);
    if (it != index_->by_text.end() && types_[it->second] == TokenType::control) eog_.push_back(it->second);
  }
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());
  if (eot_ < 0) {
    const auto it = index_->by_text.find("<|eot_id|>");
    if (it != index_->by_text.end()) eot_ = it->second;
  }
}

void Tokenizer::check_id(int32_t id) const {
  BITNET_CHECK(id >= 0 && id < vocab_size(), "[tokenizer] token id {} is outside the vocabulary of {} ({} tokens)",
               id, source_, vocab_size());
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return tokens_[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(id);
  return types_[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const auto it = index_->by_text.find(std::string(text));
  if (it == index_->by_text.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

void Tokenizer::add_eog(int32_t id) {
  check_id(id);
  const auto at = std::lower_bound(eog_.begin(), eog_.end(), id);
  if (at == eog_.end() || *at != id) eog_.insert(at, id);
}

std::string Tokenizer::describe() const {
  if (kind_ == TokenizerKind::spm) return fmt::format("llama/SentencePiece ({} tokens)", tokens_.size());
  return fmt::format("gpt2/byte-level BPE, pre-tokenizer {} ({} tokens)", pre_name_, tokens_.size());
}

std::vector<Tokenizer::Fragment> Tokenizer::split_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    int32_t hit = -1;
    for (int32_t id : index_->specials[static_cast<uint8_t>(text[i])]) {
      if (!parse_special && types_[id] != TokenType::user_defined) continue;
      if (text.compare(i, tokens_[id].size(), tokens_[id]) == 0) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({text.substr(start, i - start), -1});
    out.push_back({{}, hit});
    i += tokens_[hit].size();
    start = i;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
  return out;
}

void Tokenizer::append_piece(std::string& out, int32_t id, bool skip_special, bool& boundary) const {
  check_id(id);
  const TokenType t = types_[id];
  if (t == TokenType::control) {
    if (!skip_special) out += tokens_[id];
    boundary = true;
    return;
  }
  std::string piece = token_to_piece(id);
  if (kind_ == TokenizerKind::spm && add_space_prefix_ && boundary && !piece.empty() && piece[0] == ' ')
    piece.erase(0, 1);
  out += piece;
  boundary = false;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool boundary = true;
  for (int32_t id : ids) append_piece(out, id, skip_special, boundary);
  return out;
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  const bool gguf = path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
  if (gguf) return from_gguf(GgufFile::open(path));
  return from_hf(path);
}

// ---- streaming ------------------------------------------------------------------------------------------------
TokenStreamDecoder::TokenStreamDecoder(const Tokenizer& tok, bool skip_special) : tok_(tok), skip_special_(skip_special) {}

std::string TokenStreamDecoder::push(int32_t id) {
  tok_.append_piece(pending_, id, skip_special_, at_start_);
  const size_t n = utf8_complete_prefix(pending_);
  std::string out = utf8_sanitize(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string TokenStreamDecoder::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

void TokenStreamDecoder::reset() {
  pending_.clear();
  at_start_ = true;
}

}  // namespace bitnet
