# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Option sets of TensorRT-LLM's trtllm-serve: the command-line flags of `trtllm-serve serve`
and the top-level keys its --extra_llm_api_options YAML accepts (the PyTorch backend's LLM
arguments), read from TensorRT-LLM's sources. Data only; trtllm.option_problems uses it.

Each set names where it was read. "main-2026" is TensorRT-LLM's main branch as stored at
commits 00209af149e7 (tensorrt_llm/commands/serve.py) and 000439672005
(tensorrt_llm/llmapi/llm_args.py: BaseLlmArgs + TorchLlmArgs), newer than the 1.2.0rc2
release; keys a pinned release accepts and this set lacks are added with the role's
extra-keys variable, never by editing a set in place. Add a set per release you pin.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

OPTION_SETS = {
    "main-2026": {
        "source": "NVIDIA/TensorRT-LLM main: serve.py@00209af149e7, llm_args.py@000439672005",
        # trtllm-serve serve FLAGS (aliases listed together; the values in the set are names without --).
        "flags": [
            ["tokenizer"],
            ["custom_tokenizer"],
            ["host"],
            ["port"],
            ["backend"],
            ["custom_module_dirs"],
            ["log_level"],
            ["max_beam_width"],
            ["max_batch_size"],
            ["max_num_tokens"],
            ["max_seq_len"],
            ["tensor_parallel_size", "tp_size"],
            ["pipeline_parallel_size", "pp_size"],
            ["context_parallel_size", "cp_size"],
            ["moe_expert_parallel_size", "ep_size"],
            ["moe_cluster_parallel_size", "cluster_size"],
            ["gpus_per_node"],
            ["free_gpu_memory_fraction", "kv_cache_free_gpu_memory_fraction"],
            ["num_postprocess_workers"],
            ["trust_remote_code"],
            ["revision"],
            ["config", "extra_llm_api_options"],
            ["reasoning_parser"],
            ["tool_parser"],
            ["metadata_server_config_file"],
            ["server_role"],
            ["fail_fast_on_attention_window_too_large"],
            ["otlp_traces_endpoint"],
            ["disagg_cluster_uri"],
            ["enable_chunked_prefill"],
            ["media_io_kwargs"],
            ["chat_template"],
        ],
        # True/false switches (no value).
        "switches": ["trust_remote_code", "fail_fast_on_attention_window_too_large", "enable_chunked_prefill"],
        # Top-level keys of the extra_llm_api_options YAML.
        "keys": [
            "allreduce_strategy", "attention_dp_config", "attn_backend", "backend",
            "batch_wait_max_tokens_ratio", "batch_wait_timeout_iters", "batch_wait_timeout_ms",
            "batched_logits_processor", "cache_transceiver_config", "checkpoint_format",
            "checkpoint_io_policy", "checkpoint_loader", "context_parallel_size", "cp_config",
            "cuda_graph_config", "custom_tokenizer", "decoding_config", "disable_mm_encoder",
            "disable_overlap_scheduler", "dtype", "dwdp_config", "enable_attention_dp",
            "enable_autotuner", "enable_chunked_prefill", "enable_early_first_token_response",
            "enable_encoder_decoder_mixed_cuda_graph", "enable_energy_metrics",
            "enable_in_graph_sampling", "enable_iter_perf_stats", "enable_iter_req_stats",
            "enable_layerwise_nvtx_marker", "enable_lm_head_tp_in_adp", "enable_lora",
            "enable_low_latency_host_dispatch", "enable_min_latency", "enable_mla_skip_correction",
            "enable_resource_governor", "enable_speculative_beam_history_d2h", "encode_only",
            "encoder_cuda_graph_config", "encoder_max_batch_size", "encoder_max_num_tokens",
            "env_overrides", "force_dynamic_quantization", "garbage_collection_gen0_threshold",
            "gather_generation_logits", "generation_config", "gms_config", "gpus_per_node",
            "guided_decoding_backend", "iter_stats_max_iterations", "kv_cache_compression_config",
            "kv_cache_config", "kv_connector_config", "layer_wise_benchmarks_config",
            "load_format", "lora_config", "max_batch_size", "max_beam_width", "max_input_len",
            "max_num_tokens", "max_seq_len", "max_stats_len", "mla_skip_correction_threshold",
            "mm_encoder_only", "model", "model_kwargs", "moe_cluster_parallel_size", "moe_config",
            "moe_expert_parallel_size", "moe_tensor_parallel_size", "multimodal_config",
            "mx_config", "num_postprocess_workers", "num_serve_frontends", "nvfp4_gemm_config",
            "orchestrator_type", "otlp_traces_endpoint", "peft_cache_config",
            "perf_metrics_max_requests", "perf_metrics_output_dir", "pipeline_parallel_size",
            "post_processor_hook", "postprocess_tokenizer_dir", "pp_partition",
            "prefill_capture_num_tokens", "prefill_cuda_graph_backend", "print_iter_log",
            "prometheus_metrics_config", "ray_placement_config", "ray_worker_extension_cls",
            "ray_worker_nsight_options", "reasoning_parser", "reorder_policy_config",
            "request_stats_max_iterations", "return_perf_metrics", "revision",
            "sampler_force_async_worker", "scheduler_config", "skip_tokenizer_init",
            "sleep_config", "sparse_attention_config", "speculative_config", "stream_interval",
            "telemetry_config", "tensor_parallel_size", "tokenizer", "tokenizer_mode",
            "tokenizer_revision", "torch_compile_config", "trust_remote_code",
            "use_cute_dsl_bf16_bmm", "use_cute_dsl_bf16_gemm", "use_cute_dsl_blockscaling_bmm",
            "use_cute_dsl_blockscaling_mm", "use_fine_grained_sync",
        ],
        # Keys still accepted but deprecated (a warning, not an error).
        "deprecated": ["moe_cluster_parallel_size", "decoding_config", "backend", "perf_metrics_max_requests"],
        # Keys of older releases that moved (use_cuda_graph -> cuda_graph_config).
        "renamed": {"use_cuda_graph": "cuda_graph_config", "cuda_graph_batch_sizes": "cuda_graph_config.batch_sizes",
                    "cuda_graph_padding_enabled": "cuda_graph_config.enable_padding"},
        "kv_cache_config": [
            "enable_block_reuse", "max_tokens", "max_attention_window", "sink_token_length",
            "free_gpu_memory_fraction", "host_cache_size", "disk_cache_size", "disk_cache_path",
            "cross_kv_cache_fraction", "secondary_offload_min_priority", "event_buffer_max_size",
            "attention_dp_events_gather_period_ms", "kv_events_config", "enable_partial_reuse",
            "copy_on_partial_reuse", "use_uvm", "max_gpu_total_bytes", "iteration_stats_interval",
            "dtype", "mamba_ssm_cache_dtype", "mamba_ssm_stochastic_rounding",
            "mamba_ssm_philox_rounds", "tokens_per_block", "mamba_state_cache_interval",
            "mamba_state_config", "use_kv_cache_manager_v2", "enable_swa_scratch_reuse",
            "kv_cache_event_hash_algo", "max_util_for_resume", "enable_kv_pool_rebalance",
            "kv_pool_rebalance_min_sampled_kv_caches", "kv_pool_rebalance_cooldown_secs",
            "kv_pool_rebalance_target_ratio_update_interval", "kv_pool_rebalance_ratio_threshold",
            "kv_pool_rebalance_moving_average_decay", "kv_pool_rebalance_check_interval",
            "disk_prefetch_num_reqs", "fp8_context_mla_kv_len_cap", "pool_ratio", "avg_seq_len",
            "block_reuse_config",
        ],
        "cuda_graph_config": ["batch_sizes", "max_batch_size", "enable_padding", "mode"],
    },
}
