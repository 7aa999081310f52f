cd /work/main
./target/release/medsgm bench --out /work/scratch/t1tune/test_slab recon --task mri --data configs/mri_t1.toml --methods zero-filled,fista-tv,dds --model models/mri_t1_multi/model.safetensors --config configs/tuned_mri_t1_multi.toml --n 9 --steps 50 --repeats 1 --accel 4,8 > /work/scratch/t1tune/test_slab.log 2>&1
./target/release/medsgm bench --out /work/scratch/t1tune/test_pd recon --task mri --data data/real/independent/mr_pd_series --methods zero-filled,fista-tv,dds --model models/mri_t1_multi/model.safetensors --config configs/tuned_mri_t1_multi.toml --n 20 --steps 50 --repeats 1 --accel 4 > /work/scratch/t1tune/test_pd.log 2>&1
grep "|" /work/scratch/t1tune/test_slab/summary.md /work/scratch/t1tune/test_pd/summary.md
