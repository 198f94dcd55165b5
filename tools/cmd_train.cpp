// `bitnet train --config FILE [--resume]`: a training run from a JSON config (see bitnet/train_run.h).
#include <bitnet/distributed.h>
#include <bitnet/thread_pool.h>
#include <bitnet/train_run.h>

#include <algorithm>
#include <cstdio>

#include "commands.h"

namespace bitnet::cli {

void add_train_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("train", "Train a BitNet b1.58 model (QAT with STE) from a JSON config");
  auto config = std::make_shared<std::string>();
  auto resume = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  auto threads = std::make_shared<int>(0);
  cmd->add_option("-c,--config", *config, "The run's JSON config (model, quant, data, train, output)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_flag("--resume", *resume, "Continue from the output directory's checkpoint.safetensors");
  cmd->add_flag("-q,--quiet", *quiet, "No progress lines");
  cmd->add_option("-t,--threads", *threads, "Threads to use (default: BITNET_THREADS or all CPUs)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([&selected, config, resume, quiet, threads] {
    selected = [config, resume, quiet, threads]() {
      if (*threads > 0) set_default_thread_count(*threads);
      const train::RunConfig c = train::load_run_config(*config);
      train::RunResult r;
      try {
        r = train::run_training(c, *resume, *quiet ? nullptr : stdout);
      } catch (const std::exception& e) {
        // Under mpirun an error on one rank would leave the others waiting in their next all-reduce: it is
        // printed with the rank and ends the whole job (MPI_Abort).
        train::Communicator& comm = train::world();
        if (comm.size() <= 1) throw;
        std::fprintf(stderr, "bitnet train: error on rank %d of %d: %s\n", comm.rank(), comm.size(), e.what());
        std::fflush(stderr);
        train::abort_job(1);
        throw;
      }
      if (train::world().rank() != 0) return 0;  // rank 0 reports for the job
      std::printf("bitnet train: %lld steps, loss %.4f%s, %.0f tokens/s; wrote %s/{run.json, train_log.csv, "
                  "loss.svg, checkpoint.safetensors%s}\n",
                  static_cast<long long>(r.steps), r.final_loss,
                  std::isnan(r.val_loss) ? "" : fmt::format(", validation {:.4f}", r.val_loss).c_str(), r.tokens_per_s,
                  c.output_dir.c_str(), r.steps == c.options.total_steps ? ", model.safetensors" : "");
      if (train::world().size() > 1)
        std::printf("bitnet train: %d ranks (%s); rank 0 waited %.2f s for gradient sums, %.1f%% of the run\n",
                    train::world().size(), train::world().backend().c_str(), r.comm_wait_s,
                    100.0 * r.comm_wait_s / std::max(r.seconds, 1e-9));
      return 0;
    };
  });
}

}  // namespace bitnet::cli
