cd /work/main
set -e
M=models/ct_head_chest/model.safetensors
./target/release/medsgm tune --task ct --geometry fan --dose 1e4 --views 23 --method fista-tv --metric psnr --n 4 --budget 12 --data configs/ct_head_chest.toml --model $M --out configs/tuned_ct_head_chest_fan.toml 2>&1 | tail -2
./target/release/medsgm tune --task ct --geometry fan --dose 1e4 --views 23 --method dds --metric psnr --n 2 --budget 12 --steps 50 --data configs/ct_head_chest.toml --model $M --out configs/tuned_ct_head_chest_fan.toml 2>&1 | tail -2
echo "tuned $(date)"
./target/release/medsgm bench --out docs/bench/ct_head_chest_fan recon --task ct --geometry fan --dose 1e4 --views 23 --methods fbp,fista-tv,dds --data configs/ct_head_chest.toml --model $M --config configs/tuned_ct_head_chest_fan.toml --n 12 --steps 50 --repeats 1 2>&1 | tail -6
echo "done $(date)"
