// The Hub client's pure parts (src/hub): ORG/NAME[:FILE] parsing, the choice of a model's files from a listing,
// ETag normalization and the digests the Hub names files by (checked against published test vectors and git),
// the cache paths, and the environment huggingface_hub reads. The network side is tested end to end by
// tests/hub (a fake Hub on loopback, huggingface_hub as the oracle).
#include <bitnet/error.h>
#include <bitnet/hub.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "hub/digest.h"
#include "hub/file_download.h"
#include "hub/hub_cache.h"
#include "hub/http_client.h"

namespace bitnet::hub {
namespace {

std::vector<RepoFile> listing(std::initializer_list<const char*> names) {
  std::vector<RepoFile> out;
  for (const char* n : names) out.push_back({n, 1, ""});
  return out;
}

TEST(HubRef, ParsesRepoAndSelector) {
  auto r = parse_model_ref("microsoft/bitnet-b1.58-2B-4T-gguf");
  EXPECT_EQ(r.repo, "microsoft/bitnet-b1.58-2B-4T-gguf");
  EXPECT_EQ(r.selector, "");
  r = parse_model_ref("tiiuae/Falcon3-1B-Instruct-1.58bit-GGUF:Q2_K");
  EXPECT_EQ(r.repo, "tiiuae/Falcon3-1B-Instruct-1.58bit-GGUF");
  EXPECT_EQ(r.selector, "Q2_K");
  r = parse_model_ref("org/name:sub/dir/model.gguf");
  EXPECT_EQ(r.selector, "sub/dir/model.gguf");
}

TEST(HubRef, RefusesWhatIsNotARepository) {
  for (const char* bad : {"model.gguf", "org/", "/name", "a/b/c", "org/na me", "org/..", "https://huggingface.co/a/b",
                          "org/name:", "org/name:../../etc/passwd", "org/name:/abs", "org--x/name", "-org/name"})
    EXPECT_THROW(parse_model_ref(bad), Error) << bad;
}

TEST(HubFiles, PicksTheOnlyGgufAndIgnoresProjectors) {
  const auto m = choose_model_files("o/n", listing({"README.md", "mmproj-f16.gguf", "ggml-model-i2_s.gguf"}), "");
  EXPECT_EQ(m.files, std::vector<std::string>{"ggml-model-i2_s.gguf"});
  EXPECT_EQ(m.model, "ggml-model-i2_s.gguf");
  EXPECT_EQ(m.note, "");
}

TEST(HubFiles, PrefersTernaryPackingsAmongSeveral) {
  const auto m = choose_model_files("o/n", listing({"m-f16.gguf", "m-TQ1_0.gguf", "m-TQ2_0.gguf"}), "");
  EXPECT_EQ(m.model, "m-TQ2_0.gguf");
  EXPECT_NE(m.note.find("m-TQ1_0.gguf"), std::string::npos);  // the alternatives are named
  EXPECT_THROW(choose_model_files("o/n", listing({"m-f16.gguf", "m-q8_0.gguf"}), ""), Error);
}

TEST(HubFiles, SelectorNamesAFileOrAQuantizationTag) {
  const auto l = listing({"m-Q4_K.gguf", "m-Q4_K_M.gguf", "m-TQ1_0.gguf", "README.md"});
  EXPECT_EQ(choose_model_files("o/n", l, "tq1_0").model, "m-TQ1_0.gguf");
  EXPECT_EQ(choose_model_files("o/n", l, "Q4_K_M").model, "m-Q4_K_M.gguf");
  EXPECT_EQ(choose_model_files("o/n", l, "q4_k").model, "m-Q4_K.gguf");  // the tag that ends the name wins
  EXPECT_EQ(choose_model_files("o/n", l, "README.md").files, std::vector<std::string>{"README.md"});
  try {
    choose_model_files("o/n", l, "q8_0");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m-TQ1_0.gguf"), std::string::npos) << e.what();
  }
  EXPECT_THROW(choose_model_files("o/n", listing({"a-Q4_K_M.gguf", "b-Q4_K_M.gguf"}), "q4_k_m"), Error);
  // Globs, as llama-cpp-python's from_pretrained(filename=...) takes them: exactly one match.
  EXPECT_EQ(choose_model_files("o/n", l, "*TQ1_0.gguf").model, "m-TQ1_0.gguf");
  EXPECT_THROW(choose_model_files("o/n", l, "*Q4_K*.gguf"), Error);
  EXPECT_THROW(choose_model_files("o/n", l, "*.bin"), Error);
}

TEST(HubFiles, CheckpointTakesWhatTheEngineReadsOnly) {
  const auto l = listing({"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                          "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                          "generation_config.json", "README.md", "modeling_bitnet.py", "pytorch_model.bin",
                          "original/consolidated.safetensors", "chat_template.jinja"});
  const auto m = choose_model_files("o/n", l, "");
  EXPECT_EQ(m.model, "");
  EXPECT_EQ(m.files, (std::vector<std::string>{"config.json", "model-00001-of-00002.safetensors",
                                               "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                                               "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                               "chat_template.jinja"}));
  EXPECT_EQ(choose_model_files("o/n", l, "config.json").files, m.files);  // a checkpoint file means the checkpoint
  EXPECT_THROW(choose_model_files("o/n", listing({"README.md", "pytorch_model.bin", "config.json"}), ""), Error);
}

TEST(HubEtag, NormalizesAsHuggingfaceHub) {
  EXPECT_EQ(normalize_etag("\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("abc"), "abc");
}

TEST(HubDigest, Sha256AndGitBlobSha1MatchKnownValues) {
  // FIPS 180-2 test vector; `printf 'hello\n' | git hash-object --stdin`.
  Digest s(digest_kind_of_etag(std::string(64, 'a')), 3);
  s.update("abc");
  EXPECT_EQ(s.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Digest g(digest_kind_of_etag(std::string(40, '0')), 6);
  g.update("hel");
  g.update("lo\n");
  EXPECT_EQ(g.hex(), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(digest_kind_of_etag("not-a-digest"), DigestKind::none);
  EXPECT_EQ(digest_kind_of_etag(std::string(64, 'g')), DigestKind::none);
}

TEST(HubCache, LayoutLinksAndRefs) {
  const auto root = std::filesystem::temp_directory_path() / ("bitnet_hub_cache_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  const RepoCache cache(root, "org/name");
  EXPECT_EQ(cache.dir, root / "models--org--name");
  const std::string commit(40, 'c');
  std::filesystem::create_directories(cache.dir / "blobs");
  std::ofstream(cache.blob("e1")) << "weights";
  cache.link(commit, "sub/model.gguf", "e1");
  const auto pointer = cache.snapshot(commit) / "sub" / "model.gguf";
  EXPECT_EQ(std::filesystem::read_symlink(pointer), std::filesystem::path("../../../blobs/e1"));
  cache.link(commit, "sub/model.gguf", "e1");  // idempotent
  EXPECT_EQ(cache.commit_of("main"), "");
  cache.write_ref("main", commit);
  EXPECT_EQ(cache.commit_of("main"), commit);
  EXPECT_EQ(cache.commit_of(commit), commit);
  const auto files = cache.snapshot_files(commit);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].name, "sub/model.gguf");
  EXPECT_EQ(files[0].size, 7);
  std::filesystem::remove_all(root);
}

TEST(HubConfig, ReadsTheEnvironmentAsHuggingfaceHub) {
  ::setenv("HF_HOME", "/tmp/hfh", 1);
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HF_ENDPOINT", "http://mirror.example/", 1);
  ::setenv("HF_TOKEN", " hf_x \n", 1);
  ::setenv("HF_HUB_OFFLINE", "TRUE", 1);
  HubConfig c = HubConfig::from_environment();
  EXPECT_EQ(c.cache_dir, std::filesystem::path("/tmp/hfh/hub"));
  EXPECT_EQ(c.endpoint, "http://mirror.example");
  EXPECT_EQ(c.token, "hf_x");
  EXPECT_TRUE(c.offline);
  ::setenv("HF_HUB_CACHE", "/tmp/elsewhere", 1);
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  c = HubConfig::from_environment();
  EXPECT_EQ(c.cache_dir, std::filesystem::path("/tmp/elsewhere"));
  EXPECT_FALSE(c.offline);
  for (const char* v : {"HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE"}) ::unsetenv(v);
}

TEST(HubUrl, OriginHostAndEncoding) {
  EXPECT_EQ(url_origin("https://HuggingFace.co/a/b?x"), "https://huggingface.co");
  EXPECT_EQ(url_host("http://user@127.0.0.1:8080/x"), "127.0.0.1:8080");
  EXPECT_EQ(url_encode_path("dir/a b#c.gguf"), "dir/a%20b%23c.gguf");
  EXPECT_EQ(url_encode_component("refs/pr/1"), "refs%2Fpr%2F1");
}

}  // namespace
}  // namespace bitnet::hub
