#pragma once
// What a training run reports: a one-line progress string (step, loss, tokens/s, ETA), a CSV log with one
// row per logged step, and an SVG plot of the train and validation loss written next to it. The CSV is the
// source of truth; on resume, rows past the checkpoint's step are dropped so the log matches the run.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::train {

struct LogRow {
  int64_t step = 0;
  double loss = NAN;      // training loss of the step
  double val_loss = NAN;  // NaN where no validation ran
  double lr = 0.0;
  double weight_decay = 0.0;
  double grad_norm = 0.0;
  double tokens_per_s = 0.0;
  double elapsed_s = 0.0;
  double flip_fraction = NAN;  // share of quantized weights whose sign class (-, 0, +) changed since the last row
};

class TrainLog {
 public:
  // Opens `csv_path`. resume_step < 0 starts a new log (truncating the file); otherwise the rows of an
  // existing log with step < resume_step are kept (and rewritten) and later ones dropped.
  explicit TrainLog(std::string csv_path, int64_t resume_step = -1);
  void add(const LogRow& row);  // appends a line and flushes it, so a crash loses nothing
  const std::vector<LogRow>& rows() const { return rows_; }
  // Writes the loss plot (SVG) of all rows.
  void write_svg(const std::string& path, const std::string& title = "loss") const;

  static constexpr const char* kHeader =
      "step,loss,val_loss,lr,weight_decay,grad_norm,tokens_per_s,elapsed_s,flip_fraction";
  // The header of logs written before flip_fraction was logged (read, and rewritten with the new header on resume).
  static constexpr const char* kHeaderV1 = "step,loss,val_loss,lr,weight_decay,grad_norm,tokens_per_s,elapsed_s";

 private:
  void append_line(const LogRow& row) const;
  std::string path_;
  std::vector<LogRow> rows_;
};

// Reads a CSV written by TrainLog (throws bitnet::Error naming the file and line on a malformed row).
std::vector<LogRow> read_train_log(const std::string& csv_path);

// An SVG line chart of loss against step: training loss as a line, validation loss as a line with dots.
std::string render_loss_svg(const std::vector<LogRow>& rows, const std::string& title);

// "step 120/1000 [###.......]  12% | loss 2.3456 | 12.3k tok/s | 0:41 elapsed | ETA 4:59"
std::string format_progress(int64_t steps_done, int64_t total_steps, double loss, double tokens_per_s,
                            double elapsed_s);

}  // namespace bitnet::train
