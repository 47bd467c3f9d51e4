"""Every feedback message, in English and Chinese. Tests and stages produce {"id", "params"}; this renders them."""
from __future__ import annotations

LANGUAGES = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    # ------------------------------------------------------------------ any test
    "not_implemented": {
        "en": "{function} is not written yet (it raises NotImplementedError{at})",
        "zh": "{function} 还没有实现（抛出了 NotImplementedError{at}）",
    },
    "exception": {
        "en": "{function} raised {type}{colon}{detail}{at}",
        "zh": "{function} 抛出了异常 {type}{colon}{detail}{at}",
    },
    "cannot_import": {
        "en": "{function} could not run: {file} does not import ({type}{colon}{detail}{at})",
        "zh": "{function} 无法运行：{file} 导入失败（{type}{colon}{detail}{at}）",
    },
    "wrong_type": {
        "en": "{function}: {detail}{at}",
        "zh": "{function}：返回值类型不对：{detail}{at}",
    },
    "timeout": {
        "en": "{function} did not finish: {detail} (an infinite loop?)",
        "zh": "{function} 没有在限定时间内结束：{detail}（是否有死循环？）",
    },
    "crashed": {
        "en": "{function} crashed the Python process: {detail}",
        "zh": "{function} 使 Python 进程崩溃：{detail}",
    },
    "internal_error": {
        "en": "the grader failed on this test; course staff have been told (this is not your fault)",
        "zh": "评分程序在这个测试上出错了，与你的代码无关，请联系助教",
    },
    # ------------------------------------------------------------------ ops
    "op_forward_wrong": {
        "en": "{op} forward value is wrong: for {inputs} expected {expected}, got {got}",
        "zh": "{op} 的前向计算结果不对：输入 {inputs} 时应为 {expected}，实际为 {got}",
    },
    "op_backward_wrong": {
        "en": "{op} backward is wrong: for {inputs} and upstream gradient {upstream} expected {expected}, got {got}",
        "zh": "{op} 的反向传播（_backward）不对：输入 {inputs}、上游梯度 {upstream} 时应得到 {expected}，实际为 {got}",
    },
    "op_backward_overwrites": {
        "en": "{op} backward replaces the gradient instead of adding to it: for {inputs}, upstream gradient "
              "{upstream} and gradients already held ({before}) expected {expected}, got {got} (use +=, not =)",
        "zh": "{op} 的反向传播覆盖了已有的梯度而不是累加：输入 {inputs}、上游梯度 {upstream}、已有梯度（{before}）时"
              "应为 {expected}，实际为 {got}（应使用 +=，而不是 =）",
    },
    "graph_wrong": {
        "en": "{graph}: node {node} has (value, gradient) {got}, expected {expected}",
        "zh": "{graph}：第 {node} 个节点的（值，梯度）为 {got}，应为 {expected}",
    },
    # ------------------------------------------------------------------ backprop
    "backward_seed": {
        "en": "backward() must start with self.grad = 1.0 on the output: its gradient is {got}, expected {expected}",
        "zh": "backward() 应先把输出节点的梯度设为 1.0（self.grad = 1.0）：实际为 {got}，应为 {expected}",
    },
    "backward_skips_nodes": {
        "en": "backward() never called _backward of {missing} of the {total} inner nodes: does the topological "
              "sort visit every node of _prev?",
        "zh": "backward() 没有调用 {total} 个中间节点中 {missing} 个节点的 _backward："
              "拓扑排序是否遍历了 _prev 中的每个节点？",
    },
    "backward_repeats_nodes": {
        "en": "backward() called a node's _backward {times} times: keep a visited set so each node is sorted once",
        "zh": "backward() 对同一个节点调用了 {times} 次 _backward：请用 visited 集合保证每个节点只排序一次",
    },
    "backward_wrong_order": {
        "en": "backward() called a node's _backward before the node had received all of its gradient: go through "
              "the topological order in reverse (did you forget reversed()?)",
        "zh": "backward() 在某个节点的梯度还没有收齐时就调用了它的 _backward："
              "应按拓扑序的逆序调用（是否忘了 reversed()？）",
    },
    "backward_wrong": {
        "en": "backward(): node {node} has gradient {got}, expected {expected}",
        "zh": "backward()：第 {node} 个节点的梯度为 {got}，应为 {expected}",
    },
    # ------------------------------------------------------------------ nn
    "parameters_count": {
        "en": "{model}.parameters() has {got} values, expected {expected}{hint_text}",
        "zh": "{model}.parameters() 有 {got} 个参数，应为 {expected}{hint_text}",
    },
    "parameters_repeated": {
        "en": "{model}.parameters() lists the same parameter more than once",
        "zh": "{model}.parameters() 中同一个参数出现了不止一次",
    },
    "parameters_foreign": {
        "en": "{model}.parameters() returns Values that are not the model's own w and b (copies?)",
        "zh": "{model}.parameters() 返回的不是模型自身的 w 和 b（是否复制了新的 Value？）",
    },
    "parameters_order": {
        "en": "{model}.parameters() has the right Values in the wrong order: weights then bias, neuron by neuron, "
              "layer by layer",
        "zh": "{model}.parameters() 的参数顺序不对：应先权重后偏置，按神经元、按层依次排列",
    },
    "mlp_sizes": {
        "en": "{model} should have layers of {expected} neurons, got {got}",
        "zh": "{model} 各层的神经元个数应为 {expected}，实际为 {got}",
    },
    "mlp_nonlin": {
        "en": "{model}: every layer must be non-linear (relu) except the last, which is linear (nonlin=False)",
        "zh": "{model}：除最后一层为线性层（nonlin=False）外，其余各层都应使用非线性（relu）",
    },
    "zero_grad": {
        "en": "zero_grad() on {model} left {left} parameter gradient(s) non-zero",
        "zh": "{model} 调用 zero_grad() 后仍有 {left} 个参数的梯度不为 0",
    },
    "zero_grad_changes_data": {
        "en": "zero_grad() on {model} changed parameter values: it must reset only p.grad, never p.data",
        "zh": "{model} 调用 zero_grad() 后参数值被改变了：只应把 p.grad 清零，不能修改 p.data",
    },
    "layer_single_output": {
        "en": "{model} has one neuron: its call must return that neuron's Value, not a list",
        "zh": "{model} 只有一个神经元：调用时应直接返回该神经元的 Value，而不是列表",
    },
    "layer_list_output": {
        "en": "{model} must return a list of Values (one per neuron)",
        "zh": "{model} 应返回 Value 的列表（每个神经元一个）",
    },
    "model_output": {
        "en": "{model} output is wrong: for x = {x} expected {expected}, got {got}",
        "zh": "{model} 的输出不对：x = {x} 时应为 {expected}，实际为 {got}",
    },
    "model_gradients": {
        "en": "{model}: parameter gradients after backpropagation are wrong for x = {x}: expected {expected}, "
              "got {got}",
        "zh": "{model}：x = {x} 时反向传播后参数的梯度不对：应为 {expected}，实际为 {got}",
    },
    # ------------------------------------------------------------------ training
    "loss_value": {
        "en": "{call} value is wrong: for {inputs} expected {expected}, got {got}",
        "zh": "{call} 的值不对：输入 {inputs} 时应为 {expected}，实际为 {got}",
    },
    "loss_gradients": {
        "en": "{call}: gradients of its inputs are wrong for {inputs}: expected {expected}, got {got}",
        "zh": "{call}：输入 {inputs} 时各输入的梯度不对：应为 {expected}，实际为 {got}",
    },
    "sgd_step": {
        "en": "sgd_step must do p.data -= lr * p.grad: for (data, grad) = {before} and lr = 0.1 expected {expected}, "
              "got {got}",
        "zh": "sgd_step 应执行 p.data -= lr * p.grad：(data, grad) = {before}、lr = 0.1 时应为 {expected}，"
              "实际为 {got}",
    },
    "sgd_step_changes_grad": {
        "en": "sgd_step must change only p.data, not p.grad: for (data, grad) = {before} the gradient became {got}",
        "zh": "sgd_step 只应修改 p.data，不能修改 p.grad：(data, grad) = {before} 时梯度变成了 {got}",
    },
    "train_length": {
        "en": "train() must return one loss per epoch: {epochs} epochs, got {got} values",
        "zh": "train() 应每个 epoch 返回一个损失值：共 {epochs} 个 epoch，实际返回 {got} 个",
    },
    "train_no_zero_grad": {
        "en": "train(): loss differs from epoch 1: did you zero the gradients (model.zero_grad()) before backward()?",
        "zh": "train()：从第 1 个 epoch 起损失不对：是否在 backward() 之前调用了 model.zero_grad() 清零梯度？",
    },
    "train_zero_grad_after_backward": {
        "en": "train(): the parameters never change: in each epoch call model.zero_grad(), then loss.backward(), "
              "then sgd_step(), in that order",
        "zh": "train()：参数始终没有更新：每个 epoch 应依次调用 model.zero_grad()、loss.backward()、sgd_step()",
    },
    "train_ascent": {
        "en": "train(): the loss grows: the update must go against the gradient (p.data -= lr * p.grad)",
        "zh": "train()：损失在增大：参数更新应沿梯度的反方向（p.data -= lr * p.grad）",
    },
    "train_no_l2": {
        "en": "train(): the loss leaves out the L2 penalty: loss = mse_loss(...) + l2_penalty(model.parameters(), lam)",
        "zh": "train()：损失中缺少 L2 正则项：loss = mse_loss(...) + l2_penalty(model.parameters(), lam)",
    },
    "train_sum_not_mean": {
        "en": "train(): the loss is a sum, not a mean: divide the squared errors by len(ys)",
        "zh": "train()：损失是求和而不是平均：平方误差之和应除以 len(ys)",
    },
    "train_final_parameters": {
        "en": "train(): the losses are right but the final parameters differ: expected {expected}, got {got}",
        "zh": "train()：损失值正确，但训练后的参数不对：应为 {expected}，实际为 {got}",
    },
    "train_trajectory": {
        "en": "train(): the loss differs from epoch {epoch}: expected {expected}, got {got}",
        "zh": "train()：从第 {epoch} 个 epoch 起损失不对：应为 {expected}，实际为 {got}",
    },
    # ------------------------------------------------------------------ public tests (grader check)
    "public.mismatch": {
        "en": "{what} is wrong: for {inputs} expected {expected}, got {got}",
        "zh": "{what} 不对：输入 {inputs} 时应为 {expected}，实际为 {got}",
    },
    "public.failed": {"en": "{text}", "zh": "{text}"},
    # ------------------------------------------------------------------ submission-level errors
    "import_failed": {
        "en": "{file} does not import: {type}{colon}{detail}{at}",
        "zh": "{file} 无法导入：{type}{colon}{detail}{at}",
    },
    "missing_names": {
        "en": "{file} defines no {names}: the tests need these names (was something renamed?)",
        "zh": "{file} 中没有定义 {names}：测试需要这些名字（是否改了名？）",
    },
    "import_timeout": {
        "en": "importing {file} did not finish: {detail}",
        "zh": "导入 {file} 没有在限定时间内结束：{detail}",
    },
    "missing_file": {
        "en": "{file} is missing from the submission: its tests get 0 points",
        "zh": "提交中缺少 {file}：相关测试计 0 分",
    },
    "encoding_gbk": {
        "en": "{file} is not UTF-8; it was read as GBK (save your files as UTF-8)",
        "zh": "{file} 不是 UTF-8 编码，已按 GBK 读取（请将文件保存为 UTF-8）",
    },
    "encoding_bad": {
        "en": "{file} is not UTF-8 text: byte {byte} at offset {offset}; it was replaced by \ufffd",
        "zh": "{file} 不是 UTF-8 文本：偏移 {offset} 处的字节 {byte} 无法解码，已替换为 \ufffd",
    },
}

HINTS = {
    "parameters_count.bias": {"en": ": the bias of each neuron is missing?", "zh": "：是否漏掉了每个神经元的偏置 b？"},
}


class _Params(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(message: dict, lang: str = "en") -> str:
    """One message in one language; unknown ids and missing parameters never raise."""
    lang = lang if lang in LANGUAGES else "en"
    params = _Params(message.get("params") or {})
    if params.get("where"):
        params["at"] = f" at {params['where']}" if lang == "en" else f"，位置：{params['where']}"
    if params.get("detail"):
        params["colon"] = ": "
    hint = HINTS.get(f"{message.get('id')}.{params.get('hint')}")
    if hint:
        params["hint_text"] = hint[lang]
    template = MESSAGES.get(str(message.get("id")), {}).get(lang)
    if template is None:  # an id from elsewhere (a public test's own feedback): shown as it is, never formatted
        return str(params.get("text") or message.get("id"))
    return template.format_map(params)
